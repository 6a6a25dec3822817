"""Study page render time with 8 arms × 3 seeds × 10,000 steps of metrics (about 1.2 million points).

1. A fresh database gets an ablation study of 7 ideas (8 arms) with 3 seeds, launched through the service;
   its 24 runs are marked succeeded and given 10,000 steps of train_loss, tokens_per_s, peak_mem_mb,
   moe_imbalance and fp4_error plus val_loss every 100 steps, bulk-inserted (the point is reading them);
   each run's downsampled chart series is stored as the worker stores it when a run ends (timed apart).
2. The page is requested in-process (django.test.Client, DEBUG off) ``--repeat`` times cold (chart cache
   cleared before each request) and ``--repeat`` times warm (finished studies' charts come from the cache);
   median and max wall time, page size, SQL queries and the cold time split into its parts are printed.

    .venv/bin/python benchmarks/experiments_study_page.py [--arms 8] [--seeds 3] [--steps 10000] [--repeat 5] [--sqlite]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

from experiments_setup import people_and_ideas, start


def _populate(arms: int, seeds: int, steps: int):
    from django.utils import timezone

    from experiments import charts, series, services
    from experiments.models import Attempt, Metric, Run, RunStatus

    pic, ideas, _ = people_and_ideas(arms - 1)
    study = services.study_launch(user=pic, kind="ablation", baseline="bench", ideas=[idea.key for idea in ideas],
                                  seeds=list(range(seeds)), max_steps=steps)
    batch: list[Metric] = []
    for index, run in enumerate(Run.objects.filter(study=study).order_by("id")):
        shift = 0.01 * (index % 5)
        for step in range(1, steps + 1):
            loss = 3.0 + shift + 2.0 * math.exp(-step / 2000) + 0.02 * math.sin(step / 7)
            batch += [Metric(run=run, step=step, name="train_loss", value=loss),
                      Metric(run=run, step=step, name="tokens_per_s", value=9000.0 + index),
                      Metric(run=run, step=step, name="peak_mem_mb", value=800.0 + step % 50),
                      Metric(run=run, step=step, name="moe_imbalance", value=1.0 + 1.0 / step),
                      Metric(run=run, step=step, name="fp4_error", value=0.01 + 0.001 * math.cos(step))]
            if step % 100 == 0:
                batch.append(Metric(run=run, step=step, name="val_loss", value=loss + 0.05))
            if len(batch) >= 50_000:
                Metric.objects.bulk_create(batch, batch_size=10_000)
                batch = []
    Metric.objects.bulk_create(batch, batch_size=10_000)
    now = timezone.now()
    Attempt.objects.filter(run__study=study).update(state=RunStatus.SUCCEEDED, finished_at=now)
    Run.objects.filter(study=study).update(status=RunStatus.SUCCEEDED, step=steps, finished_at=now)
    # What the worker does as each run ends (experiments.execution.attempts): store its downsampled series.
    started = time.perf_counter()
    for run_id in Run.objects.filter(study=study).values_list("pk", flat=True):
        series.run_series_refresh(run_id=run_id, names=charts.STORED_METRICS)
    print(f"stored the chart series of {seeds * arms} runs in {time.perf_counter() - started:.1f} s "
          f"({(time.perf_counter() - started) / (seeds * arms) * 1000:.0f} ms per run, paid once when it ends)")
    return pic, study


def _time_parts(study_id: int) -> dict[str, float]:
    """Wall time of the page's main parts, measured separately."""
    from experiments import charts, selectors
    from experiments.results import study_results

    parts = {}
    started = time.perf_counter()
    study = selectors.study_detail(study_id)
    parts["load study, arms, runs"] = time.perf_counter() - started
    started = time.perf_counter()
    results = study_results(study)
    parts["final values + statistics"] = time.perf_counter() - started
    started = time.perf_counter()
    charts.study_charts(study, results.arms)
    parts["charts (metric reads, bands, LTTB)"] = time.perf_counter() - started
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sqlite", action="store_true", help="SQLite file instead of a throw-away PostgreSQL")
    args = parser.parse_args()
    start("study-page", sqlite=args.sqlite)
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from experiments.models import Metric

    started = time.perf_counter()
    pic, study = _populate(args.arms, args.seeds, args.steps)
    print(f"seeded {Metric.objects.count():,} metric points in {time.perf_counter() - started:.1f} s "
          f"({connection.vendor})")
    client = Client()
    client.force_login(pic)
    url = f"/experiments/studies/{study.pk}/"
    client.get(url)  # warm-up: imports, template compilation
    for label, clear_cache in (("cold", True), ("warm", False)):
        timings = []
        for _ in range(args.repeat):
            if clear_cache:
                cache.clear()
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
        print(f"study page {label}, {args.arms} arms × {args.seeds} seeds × {args.steps:,} steps: "
              f"median {statistics.median(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms over "
              f"{args.repeat}; {len(response.content) / 1024:.0f} KiB, {len(queries.captured_queries)} queries")
    for part, seconds in _time_parts(study.pk).items():
        print(f"  {part}: {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
