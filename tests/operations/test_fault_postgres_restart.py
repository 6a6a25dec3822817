"""Fault drill: PostgreSQL restarts (`pg_ctl restart -m fast`) while runs train.

The trainers know nothing about the database and keep going; each worker-side monitor loses its
connection, reconnects, writes the metrics it could not write meanwhile and renews its lease. The outage
(about a second) is far shorter than the lease (20 s here), so the reconciler, running every 2 s, must not
expire anything: each run ends with exactly one attempt, and every point of metrics.jsonl is in the
database exactly once.
"""
from __future__ import annotations

import json
import math
import time

import pytest
from django.db import connection
from django.utils import timezone

from experiments import services
from experiments.models import Attempt, Metric, Run, RunStatus
from experiments.execution.monitor import NOT_METRICS
from tests.experiments.helpers import runs_when_done, wait_until

pytestmark = [pytest.mark.requires_postgres, pytest.mark.timeout(300)]

LEASE_SECONDS = 20
ENV = {
    "FLIGHTDECK_LEASE_SECONDS": str(LEASE_SECONDS),
    "FLIGHTDECK_MONITOR_SECONDS": "1",
    "FLIGHTDECK_RECONCILE_SECONDS": "2",
    "FLIGHTDECK_WANDB_MODE": "disabled",
}
STEPS = 150  # long enough that both runs still train for seconds after the restart


def points_in_file(run: Run) -> list[tuple[int, str]]:
    """(step, name) of every value the monitor should have stored from the run's metrics.jsonl."""
    points = []
    for line in (run.run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        points += [(record["step"], name) for name, value in record.items()
                   if name not in NOT_METRICS and isinstance(value, (int, float)) and math.isfinite(value)]
    return points


def test_runs_survive_a_database_restart_with_every_metric_stored_once(celery_processes, postgres_cluster, pic,
                                                                       make_idea, fast_baseline) -> None:
    # Three pool processes: two supervise the runs, one stays free for beat's reconcile task.
    worker = celery_processes.worker(env=ENV, concurrency=3)
    celery_processes.beat(env=ENV)
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", seeds=[0], max_steps=STEPS,
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key])
    wait_until(lambda: not Run.objects.filter(study=study).exclude(status=RunStatus.RUNNING, step__gte=3).exists(),
               timeout=180, what="both runs to be training")
    steps_before = dict(Run.objects.filter(study=study).values_list("pk", "step"))

    started = time.monotonic()
    postgres_cluster.restart()
    outage = time.monotonic() - started
    restarted_at = timezone.now()
    connection.close()  # this test's own connection died with the server, like every other one
    assert outage < LEASE_SECONDS / 2, f"the drill needs an outage well inside the lease, took {outage:.1f}s"

    # Heartbeats resume after the restart (on a quiet machine a run may already have finished when we look:
    # its last heartbeat still falls after the restart).
    wait_until(lambda: Attempt.objects.filter(run__study=study, heartbeat_at__gt=restarted_at).count() == 2,
               timeout=60, what="both leases to be renewed after the restart")
    runs = wait_until(lambda: runs_when_done(study), timeout=240, what="both runs to end")

    assert "database unavailable" in worker.log_text(), "the monitors must have seen the outage"
    for run in runs:
        attempts = list(run.attempts.values_list("state", "reason"))
        assert attempts == [(RunStatus.SUCCEEDED, f"finished {STEPS} steps")], attempts
        assert steps_before[run.pk] < STEPS, "the restart happened while the run trained"
        assert (run.run_dir / "train.log").read_text().count(" INFO model: ") == 1, "one trainer process"
        expected = points_in_file(run)
        stored = list(Metric.objects.filter(run=run).values_list("step", "name"))
        assert len(stored) == len(set(stored)) == len(expected), "every point once, none missing or repeated"
        assert set(stored) == set(expected)
        train_steps = sorted(step for step, name in stored if name == "train_loss")
        assert train_steps == list(range(1, STEPS + 1))
    print(f"PostgreSQL restart took {outage:.2f}s (lease {LEASE_SECONDS}s)")
