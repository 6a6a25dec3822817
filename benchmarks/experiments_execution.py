"""Launch latency and metric ingestion of the execution engine.

1. **Launch latency** (API call → trainer process started): a real Celery worker (prefork, 2 CPU slots)
   on a throw-away PostgreSQL and Redis. After one warm-up study, ``--launches`` ablation studies (2 runs
   each, 1 step) are posted to ``/api/v1/studies/`` one after another, each once the previous one finished;
   the latency of a run is its attempt's ``started_at`` (written when the trainer process exists) minus the
   time the request was sent. p50 / p95 / max over all runs.
2. **Metric ingestion rate** (points/s into the database): ``experiments.execution.monitor.ingest`` — what the worker
   calls on every new chunk of ``metrics.jsonl`` — on synthetic lines shaped like the trainer's (10 values
   per step), in chunks of ``--chunk`` lines; first as new points, then the same lines again (the upsert
   path a resumed attempt takes).

    .venv/bin/python benchmarks/experiments_execution.py [--launches 10] [--steps 20000] [--chunk 500]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from experiments_setup import people_and_ideas, start


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _launch_latencies(work: Path, launches: int) -> list[float]:
    from rest_framework.test import APIClient

    from experiments.models import Attempt, Run, RunStatus
    from tests.support.celery_processes import CeleryLauncher

    pic, ideas, _ = people_and_ideas(launches + 1)
    launcher = CeleryLauncher(database_url=os.environ["DATABASE_URL"], log_dir=work)
    launcher.worker(concurrency=2)
    client = APIClient()
    client.force_authenticate(pic)
    latencies = []
    try:
        for index, idea in enumerate(ideas):
            sent = time.time()
            response = client.post("/api/v1/studies/", {"kind": "ablation", "baseline": "bench", "ideas": [idea.key],
                                                        "seeds": [0], "max_steps": 1}, format="json")
            assert response.status_code == 201, response.json()
            study_id = response.json()["id"]
            _wait(lambda: not Run.objects.filter(study_id=study_id).exclude(
                status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]).exists(), 120, f"study {study_id} to finish")
            if index == 0:
                continue  # warm-up: the worker's first task imports Django, the trainer's first start warms caches
            for started in Attempt.objects.filter(run__study_id=study_id).values_list("started_at", flat=True):
                latencies.append(started.timestamp() - sent)
    finally:
        launcher.stop_all()
    return latencies


def _ingestion_rates(steps: int, chunk: int) -> tuple[float, float, int]:
    from experiments.models import Metric, Run
    from experiments.execution.monitor import ingest

    run = Run.objects.order_by("id").first()
    Metric.objects.filter(run=run).delete()
    lines = [{"step": step, "tokens": step * 64, "train_loss": 3.0 + 1.0 / step, "lr": 1e-3, "grad_norm": 0.5,
              "tokens_per_s": 9000.0, "peak_mem_mb": 812.0, "moe_imbalance": 1.1, "fp4_error": 0.01,
              "val_loss": 3.1, "time": time.time()} for step in range(1, steps + 1)]
    rates = []
    for _ in range(2):  # new points, then the same points again (upsert of existing rows)
        started, points = time.perf_counter(), 0
        for first in range(0, steps, chunk):
            points += ingest(run, lines[first:first + chunk])
        rates.append(points / (time.perf_counter() - started))
    return rates[0], rates[1], points


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launches", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=500)
    args = parser.parse_args()
    work = start("execution")
    from django.db import connection

    latencies = _launch_latencies(work, args.launches)
    print(f"launch latency (API call → trainer started), {len(latencies)} runs on {connection.vendor}: "
          f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {_percentile(latencies, 0.95) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")
    fresh, again, points = _ingestion_rates(args.steps, args.chunk)
    print(f"metric ingestion, {points:,} points in chunks of {args.chunk} lines: {fresh:,.0f} points/s new, "
          f"{again:,.0f} points/s re-read (upsert)")


if __name__ == "__main__":
    main()
