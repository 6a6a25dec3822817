"""PostgreSQL only: the runs explorer's most used sorts (by final val_loss and train_loss, either way) read 50 rows
down an index instead of sorting every run. Each index spells the expression exactly as the explorer's ORDER BY
does, ``(final_metrics -> 'name') [DESC] NULLS LAST, id [DESC]``, or the planner would not use it."""
from django.db import migrations

METRICS = ("val_loss", "train_loss")


def _indexes():
    for metric in METRICS:
        for direction in ("ASC", "DESC"):
            name = f"experiments_run_final_{metric}_{direction.lower()}"
            yield name, (f"CREATE INDEX {name} ON experiments_run "
                         f"((final_metrics -> '{metric}') {direction} NULLS LAST, id {direction})")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for _, sql in _indexes():
            schema_editor.execute(sql)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, _ in _indexes():
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("experiments", "0002_run_explorer")]

    operations = [migrations.RunPython(create, drop)]
