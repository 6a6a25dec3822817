"""PostgreSQL only: sorting the runs explorer by the hyperparameters that sweeps vary most (and by seed) reads 50
rows down an index instead of extracting the key from every run's config JSON and sorting them (0.45 s → a few
ms at 100k runs; see experiments/sort_indexes.py and docs/benchmarks.md)."""
from django.db import migrations

from experiments.sort_indexes import create

SORTED_KEYS = ("optim.lr", "optim.weight_decay", "optim.warmup_steps", "train.seed", "train.batch_size",
               "moe.latent_size", "moe.num_experts", "moe.top_k")


class Migration(migrations.Migration):
    dependencies = [("experiments", "0005_attempt_cancelled_by")]

    operations = [migrations.RunPython(*create("config_flat", SORTED_KEYS, "config"))]
