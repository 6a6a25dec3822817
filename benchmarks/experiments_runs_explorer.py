"""Runs explorer (page and GET /api/v1/runs/) at 100,000 runs × 20 metrics.

1. A fresh PostgreSQL database (``--sqlite`` for SQLite) gets 20 ablation studies launched through the service
   (their real runs give the template configs), then ``--runs`` runs spread over 1,000 studies, bulk-inserted
   with a flattened config (optim.lr and train.seed varying), 20 final metrics each, arm links and a tag on every
   tenth run; the 20 metrics' last points go into the metric table too (``--metric-rows 0`` to skip).
2. Each request below is made in-process (django.test.Client, DEBUG off) ``--repeat`` times, signed in as an
   area PIC (not staff: the visibility filter is on); p50, p95, max and the query count are printed, with the
   1-minute load average before and after (the machine is shared).

    .venv/bin/python benchmarks/experiments_runs_explorer.py [--runs 100000] [--repeat 30] [--sqlite]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from experiments_setup import people_and_ideas, start

METRICS = ["train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "peak_mem_mb", "moe_imbalance", "fp4_error",
           *[f"val_loss/corpus{n}" for n in range(6)], "tokens", "mtp_loss", "aux_loss", "router_entropy",
           "fp4_weight_error", "fp4_activation_error"]
STUDIES = 1000
CHUNK = 10_000

REQUESTS = [
    ("page: newest first", "/experiments/runs/"),
    ("page: sort by final val_loss", "/experiments/runs/?ordering=final.val_loss"),
    ("page: config filter + sort", "/experiments/runs/?where=optim.lr%3D0.0021&ordering=-final.val_loss"),
    ("page: status + search + tag", "/experiments/runs/?status=succeeded&search=bench+study&tag=keep"),
    ("page: a middle page", "/experiments/runs/?page={middle}"),
    ("page: config column", "/experiments/runs/?config_cols=optim.lr,train.seed&ordering=config.optim.lr"),
    # optim.beta2 has no expression index (migration 0006 indexes the usual sweep keys): a scan and a sort.
    ("page: sort by an unindexed config key", "/experiments/runs/?config_cols=optim.beta2&ordering=-config.optim.beta2"),
    ("api: newest first", "/api/v1/runs/"),
    ("api: ordering=-final.val_loss", "/api/v1/runs/?ordering=-final.val_loss"),
    ("api: config.optim.lr + config.train.seed", "/api/v1/runs/?config.optim.lr=0.0021&config.train.seed=1"),
    ("api: study + status", "/api/v1/runs/?study={study}&status=succeeded"),
    ("api: a middle page", "/api/v1/runs/?page={middle}"),
]


def _populate(total: int, metric_rows: bool):
    from django.db import connection, transaction

    from experiments import configdiff, services
    from experiments.models import Arm, Metric, Run, RunStatus, RunTag, Study

    pic, ideas, _ = people_and_ideas(20)
    seeds = list(range(5))
    templates = [services.study_launch(user=pic, kind="ablation", baseline="bench", ideas=[idea.key], seeds=seeds,
                                       max_steps=100) for idea in ideas]
    template_runs = list(Run.objects.filter(study__in=templates).order_by("id"))
    rng = random.Random(0)
    bulk = Study.objects.bulk_create([Study(
        title=f"Bench study {n}", kind="ablation", baseline=templates[0].baseline, seeds=seeds, max_steps=100,
        backend=templates[0].backend, created_by=pic) for n in range(STUDIES - len(templates))])
    arms = Arm.objects.bulk_create([Arm(study=study, name=name, kind=kind, position=position, patch={})
                                    for study in bulk
                                    for position, (name, kind) in enumerate((("baseline", "baseline"),
                                                                             ("+bench", "single")))])
    arm_of = {(arm.study_id, arm.kind): arm.pk for arm in arms}
    Run.objects.filter(study__in=templates).update(status=RunStatus.SUCCEEDED, step=100,
                                                   final_metrics={name: 3.5 for name in METRICS})
    flat_templates = [configdiff.flatten(run.config) for run in template_runs]
    for first in range(0, total - len(template_runs), CHUNK):  # in chunks, to keep the seeding's memory bounded
        runs = []
        for index in range(first, min(first + CHUNK, total - len(template_runs))):
            template = template_runs[index % len(template_runs)]
            config = {**flat_templates[index % len(template_runs)], "optim.lr": round(0.001 + 0.0001 * (index % 40), 6),
                      "train.seed": index % 5}
            loss = 3.0 + rng.random()
            runs.append(Run(study=bulk[index % len(bulk)], seed=index % 5, recipe=template.recipe,
                            overrides=template.overrides, config=template.config, config_hash=f"{index:064d}",
                            config_flat=config, backend=template.backend, wandb_tags=template.wandb_tags,
                            status=RunStatus.SUCCEEDED, step=100, max_steps=100, tokens=6400, tokens_per_s=9000.0,
                            gpu_hours=0.01,
                            final_metrics={name: (loss if "loss" in name else rng.random()) for name in METRICS}))
        with transaction.atomic():
            Run.objects.bulk_create(runs, batch_size=2000)
            Arm.runs.through.objects.bulk_create(
                [Arm.runs.through(arm_id=arm_of[(run.study_id, "single" if run.seed % 2 else "baseline")], run_id=run.pk)
                 for run in runs], batch_size=10_000)
            RunTag.objects.bulk_create([RunTag(run=run, name="keep") for run in runs[::10]], batch_size=10_000)
            if metric_rows:
                _metric_rows(connection, Metric, runs)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE")
    return pic, templates[0]


def _metric_rows(connection, metric_model, runs) -> None:
    """The last point of each of the 20 metrics of ``runs`` (COPY on PostgreSQL)."""
    rows = [(run.pk, 100, name, value) for run in runs for name, value in run.final_metrics.items()]
    if connection.vendor != "postgresql":
        metric_model.objects.bulk_create([metric_model(run_id=r, step=s, name=n, value=v) for r, s, n, v in rows],
                                         batch_size=20_000)
        return
    with connection.cursor() as cursor, cursor.cursor.copy(
            "COPY experiments_metric (run_id, step, name, value) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--metric-rows", type=int, choices=(0, 1), default=1)
    parser.add_argument("--sqlite", action="store_true", help="SQLite file instead of a throw-away PostgreSQL")
    args = parser.parse_args()
    start("runs-explorer", sqlite=args.sqlite)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from experiments.models import Metric, Run

    started = time.perf_counter()
    pic, study = _populate(args.runs, bool(args.metric_rows))
    print(f"seeded {Run.objects.count():,} runs × {len(METRICS)} final metrics, {Metric.objects.count():,} metric "
          f"rows in {time.perf_counter() - started:.0f} s ({connection.vendor})")
    client = Client()
    client.force_login(pic)
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores, shared with other sessions)")
    print(f"{'request':44} {'p50':>7} {'p95':>7} {'max':>7} {'sql p50':>8}  queries  rows")
    sql_seconds = [0.0]

    def timed(execute, sql, params, many, context):  # execute_wrapper: the database's share of each request
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_seconds[0] += time.perf_counter() - started

    for label, url in REQUESTS:
        url = url.format(study=study.pk, middle=max(1, args.runs // 100))  # 50 per page: the middle of the list
        client.get(url)  # warm-up: imports, template compilation, plan caches
        timings, sql = [], []
        for _ in range(args.repeat):
            sql_seconds[0] = 0.0
            with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(timed):
                started = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - started)
            sql.append(sql_seconds[0])
            assert response.status_code == 200, (url, response.status_code)
        rows = response.json()["count"] if url.startswith("/api/") else response.content.count(b'name="ids"')
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))]
        print(f"{label:44} {statistics.median(timings) * 1000:6.0f}ms {p95 * 1000:6.0f}ms "
              f"{timings[-1] * 1000:6.0f}ms {statistics.median(sql) * 1000:7.0f}ms  {len(queries.captured_queries):7d}  {rows}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
