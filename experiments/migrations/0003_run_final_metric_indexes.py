"""PostgreSQL only: the runs explorer's most used sorts (by final val_loss and train_loss, either way) read 50 rows
down an index instead of sorting every run (see experiments/sort_indexes.py)."""
from django.db import migrations

from experiments.sort_indexes import create

METRICS = ("val_loss", "train_loss")


class Migration(migrations.Migration):
    dependencies = [("experiments", "0002_run_explorer")]

    operations = [migrations.RunPython(*create("final_metrics", METRICS, "final"))]
