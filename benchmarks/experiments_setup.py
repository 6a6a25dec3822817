"""Shared set-up of the experiments benchmarks: a throw-away Redis and a throw-away PostgreSQL cluster (the
production database; ``--sqlite`` or DATABASE_URL to use another), then Django. Call ``start()`` before
any Django import."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def start(name: str, *, sqlite: bool = False) -> Path:
    """Redis + database + Django for the benchmark ``name``; returns its temp dir (removed at exit)."""
    from tests.support.postgres_cluster import PostgresCluster
    from tests.support.redis_server import RedisServer

    work = Path(tempfile.mkdtemp(prefix=f"flightdeck-bench-{name}-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    redis = RedisServer(work)
    redis.start()
    atexit.register(redis.stop)
    os.environ["REDIS_URL"] = redis.url
    if sqlite:
        os.environ["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    elif "DATABASE_URL" not in os.environ:
        postgres = PostgresCluster()
        postgres.start()
        atexit.register(postgres.stop)
        os.environ["DATABASE_URL"] = postgres.url
    os.environ["FLIGHTDECK_VAR_DIR"] = str(work / "var")
    os.environ["DEBUG"] = "false"  # DEBUG keeps every query in memory
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return work


def people_and_ideas(count: int, *, patch_key: str = "optim.lr"):
    """A PIC with an area, ``count`` ideas each setting ``patch_key`` differently, and the tiny-ci baseline."""
    from django.contrib.auth import get_user_model

    from experiments import services as experiment_services
    from ideas import services as idea_services

    user_model = get_user_model()
    staff = user_model.objects.create_user("bench-staff", is_staff=True)
    pic = user_model.objects.create_user("bench-pic")
    area = idea_services.area_create(slug="bench", name="Bench", pic=pic, by=staff)
    ideas = [idea_services.idea_create(submitter=pic, area=area, title=f"Bench idea {n}", summary="Benchmark.",
                                       recipe_patch={patch_key: 0.001 + 0.0001 * n}) for n in range(count)]
    baseline = experiment_services.baseline_save(name="bench", recipe="tiny-ci", overrides={
        "train.batch_size": 2, "train.seq_len": 32, "train.log_every": 1, "train.eval_every": 2,
        "train.eval_batches": 1, "train.checkpoint_every": 1000, "optim.warmup_steps": 1})
    return pic, ideas, baseline
