"""Carry the keys of `rest_framework.authtoken` (one per user, before this app) over as ApiTokens, hashed,
so scripts that send `Authorization: Token <key>` keep working after authtoken left INSTALLED_APPS.

The old table is read with plain SQL and only if it exists: authtoken is no longer installed, so neither
its model nor a migration dependency on it is available, and a fresh database never had the table. The
table itself is left in place (drop it by hand once nobody needs to roll back: DROP TABLE authtoken_token).
"""
import hashlib

from django.db import migrations

LEGACY_TABLE = "authtoken_token"


def import_authtoken_keys(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {schema_editor.quote_name('key')}, user_id, created FROM {LEGACY_TABLE}")
        rows = cursor.fetchall()
    known = set(ApiToken.objects.values_list("key_hash", flat=True))
    ApiToken.objects.bulk_create(
        ApiToken(owner_id=user_id, name="API token from before personal tokens", prefix=key[:8],
                 key_hash=digest, created_at=created)
        for key, user_id, created in rows
        if (digest := hashlib.sha256(key.encode()).hexdigest()) not in known
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(import_authtoken_keys, migrations.RunPython.noop)]
