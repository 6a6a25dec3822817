"""Personal API tokens: shown once and stored hashed, Bearer (and legacy Token) authentication, expiry and
revocation, pages and API for one's own tokens only, and the import of rest_framework.authtoken keys."""
import importlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import api_token_create, hash_secret

TOKENS = "/api/v1/tokens/"


def _bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def owner_client(client, owner) -> Client:
    client.force_login(owner)
    return client


# ---------------------------------------------------------------------------------------------- pages


def test_a_token_made_on_the_page_is_shown_once_and_stored_only_as_a_hash(owner_client, owner):
    created = owner_client.post("/accounts/tokens/", {"name": "cluster reporter", "expires_in_days": "30"})
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    secret = re.search(r'<pre id="token-secret">(fd_[\w-]+)</pre>', created.content.decode())[1]

    token = ApiToken.objects.get(owner=owner)
    assert token.key_hash == hash_secret(secret) and token.prefix == secret[:11]
    assert secret not in {str(value) for value in ApiToken.objects.values().get().values()}
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)

    listing = owner_client.get("/accounts/tokens/").content.decode()
    assert "cluster reporter" in listing and f"{token.prefix}…" in listing and secret not in listing


def test_the_page_refuses_a_token_without_a_name(owner_client):
    response = owner_client.post("/accounts/tokens/", {"name": "  ", "expires_in_days": ""})
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_on_the_page_asks_first_then_refuses_the_token(owner_client, owner):
    issued = api_token_create(owner=owner, name="old laptop")
    confirm = owner_client.get(f"/accounts/tokens/{issued.token.pk}/revoke/")
    assert confirm.status_code == 200 and "Revoke “old laptop”?" in confirm.content.decode()
    assert Client().get(TOKENS, **_bearer(issued.secret)).status_code == 200

    done = owner_client.post(f"/accounts/tokens/{issued.token.pk}/revoke/", follow=True)
    assert "Token “old laptop” revoked" in done.content.decode()
    refused = Client().get(TOKENS, **_bearer(issued.secret))
    assert refused.status_code == 401 and refused.json()["detail"] == "Token revoked."


def test_nobody_sees_or_revokes_another_users_token(client, owner, outsider):
    issued = api_token_create(owner=owner, name="mine")
    client.force_login(outsider)
    assert "mine" not in client.get("/accounts/tokens/").content.decode()
    assert client.get(f"/accounts/tokens/{issued.token.pk}/revoke/").status_code == 404
    assert client.post(f"/accounts/tokens/{issued.token.pk}/revoke/").status_code == 404
    assert client.get(f"{TOKENS}{issued.token.pk}/").status_code == 404
    assert client.delete(f"{TOKENS}{issued.token.pk}/").status_code == 404
    assert client.get(TOKENS).json()["results"] == []
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def test_the_user_menu_links_to_the_tokens_page(owner_client):
    assert 'href="/accounts/tokens/">API tokens</a>' in owner_client.get("/").content.decode()


# --------------------------------------------------------------------------------------- authentication


def test_bearer_and_legacy_token_headers_authenticate_and_record_the_last_use(client, owner):
    issued = api_token_create(owner=owner, name="script")
    for keyword in ("Bearer", "Token", "bearer"):
        response = client.get(TOKENS, HTTP_AUTHORIZATION=f"{keyword} {issued.secret}")
        assert response.status_code == 200, keyword
    assert response.json()["results"][0]["prefix"] == issued.token.prefix
    issued.token.refresh_from_db()
    assert timezone.now() - issued.token.last_used_at < timedelta(seconds=30)


def test_last_used_is_written_at_most_once_a_minute(client, owner, django_assert_num_queries):
    issued = api_token_create(owner=owner, name="script")
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=recent)
    with django_assert_num_queries(2):  # the token with its owner; the list; no UPDATE
        client.get(f"{TOKENS}{issued.token.pk}/", **_bearer(issued.secret))
    issued.token.refresh_from_db()
    assert issued.token.last_used_at == recent

    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get(TOKENS, **_bearer(issued.secret))
    issued.token.refresh_from_db()
    assert timezone.now() - issued.token.last_used_at < timedelta(seconds=30)


@pytest.mark.parametrize(("header", "detail"), [
    ("Bearer fd_not-a-real-token", "Invalid token."),
    ("Bearer", "Invalid Authorization header: expected 'Bearer <token>'."),
    ("Bearer two parts", "Invalid Authorization header: expected 'Bearer <token>'."),
])
def test_bad_credentials_get_401_with_a_bearer_challenge(db, client, header, detail):
    response = client.get(TOKENS, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["detail"] == detail
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_expired_tokens_and_tokens_of_inactive_users_are_refused(client, owner, outsider):
    expiring = api_token_create(owner=owner, name="short", expires_at=timezone.now() + timedelta(hours=1))
    ApiToken.objects.filter(pk=expiring.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(TOKENS, **_bearer(expiring.secret)).json()["detail"] == "Token expired."

    inactive = api_token_create(owner=outsider, name="x")
    outsider.is_active = False
    outsider.save()
    assert client.get(TOKENS, **_bearer(inactive.secret)).status_code == 401


# ------------------------------------------------------------------------------------------------- API


def test_the_api_creates_lists_and_revokes_own_tokens(owner_client):
    created = owner_client.post(TOKENS, {"name": "ci"}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["token"].startswith(body["prefix"]) and body["state"] == "active" and body["expires_at"] is None

    listed = owner_client.get(TOKENS).json()["results"]
    assert [row["name"] for row in listed] == ["ci"] and "token" not in listed[0]

    assert owner_client.delete(f"{TOKENS}{body['id']}/").status_code == 204
    assert owner_client.get(f"{TOKENS}{body['id']}/").json()["state"] == "revoked"
    assert Client().get(TOKENS, **_bearer(body["token"])).status_code == 401


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "ci", "expires_at": "yesterday"}, "expires_at"),
    ({"name": "ci", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
])
def test_the_api_refuses_bad_input_naming_the_field(owner_client, payload, field):
    response = owner_client.post(TOKENS, payload, content_type="application/json")
    assert response.status_code == 400 and field in response.json()


def test_a_token_cannot_mint_tokens(client, owner):
    issued = api_token_create(owner=owner, name="script")
    response = client.post(TOKENS, {"name": "successor"}, content_type="application/json", **_bearer(issued.secret))
    assert response.status_code == 403 and "Tokens cannot create tokens" in response.json()["detail"]
    # ...but it can revoke itself, e.g. when a script retires.
    assert client.delete(f"{TOKENS}{issued.token.pk}/", **_bearer(issued.secret)).status_code == 204


# ------------------------------------------------------------------------------------------ legacy keys


@pytest.mark.requires_postgres
def test_keys_of_rest_framework_authtoken_keep_working_after_the_migration(owner):
    key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # authtoken's format: 40 hex characters
    with connection.cursor() as cursor:  # the table authtoken left behind (rolled back with the test)
        cursor.execute('CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, created timestamptz, user_id int)')
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [key, owner.pk])
    migration = importlib.import_module("accounts.migrations.0002_import_authtoken_keys")
    from django.apps import apps

    with connection.schema_editor() as editor:
        migration.import_authtoken_keys(apps, editor)
        migration.import_authtoken_keys(apps, editor)  # idempotent

    token = ApiToken.objects.get(owner=owner)
    assert token.key_hash == hash_secret(key) and token.prefix == key[:8]
    assert Client().get(TOKENS, HTTP_AUTHORIZATION=f"Token {key}").status_code == 200


# --------------------------------------------------------------------------------------------- browser


def test_creating_and_revoking_a_token_in_the_browser(browser_page, screenshot, owner):
    page = browser_page
    page.goto("/accounts/login/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.click("text=API tokens")
    page.fill("#id_name", "cluster reporter")
    page.select_option("#id_expires_in_days", "90")
    page.click("text=Create token")
    secret = page.inner_text("#token-secret").strip()
    assert secret.startswith("fd_")
    screenshot(page, "token created")
    page.click("text=Done")
    api_token_create(owner=owner, name="old laptop")
    page.reload()
    screenshot(page, "tokens")
    page.click("#token-{} >> text=Revoke".format(ApiToken.objects.get(name="cluster reporter").pk))
    page.click("button:has-text('Revoke token')")
    page.wait_for_selector("text=revoked; requests with it are refused")
    assert Client().get(TOKENS, **_bearer(secret)).status_code == 401
    screenshot(page, "after revoke")
