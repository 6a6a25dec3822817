"""The worker side without a worker: metric tailing and upserts, claims, slot leases, heartbeats, and the
reconciler's three repairs (expired leases, lost messages, orphaned trainers)."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments import services
from experiments.execution import attempts, monitor, reconciler, runfiles
from experiments.execution.attempts import ClaimOutcome
from experiments.execution.backends.local import LocalBackend
from experiments.execution.launcher import trainer_launch
from experiments.models import Attempt, Metric, Run, RunStatus, SlotLease
from tests.experiments.helpers import wait_until

HOST = "gpu-test-01"


@pytest.fixture
def study(pic, make_idea, fast_baseline):
    return services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                 ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0], max_steps=10)


@pytest.fixture
def run(study) -> Run:
    return study.runs.order_by("id").first()


def line(step: int, **values) -> str:
    return json.dumps({"step": step, "time": 1.0, **values}) + "\n"


# ---------------------------------------------------------------------------------------------- metrics


def test_the_tail_reads_complete_lines_only_and_rereads_a_rewritten_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = monitor.MetricsTail(path)
    assert tail.read_new() == []  # not written yet
    path.write_text(line(1, train_loss=2.0) + '{"step": 2, "train_lo')
    assert [r["step"] for r in tail.read_new()] == [1]
    with path.open("a") as handle:
        handle.write('ss": 1.5}\nnot json\n')
    assert [(r["step"], r["train_loss"]) for r in tail.read_new()] == [(2, 1.5)]
    assert tail.read_new() == []
    path.write_text(line(1, train_loss=2.5))  # a resume rewrote the file from its checkpoint
    assert [(r["step"], r["train_loss"]) for r in tail.read_new()] == [(1, 2.5)]


def test_ingesting_the_same_points_twice_upserts_instead_of_duplicating(run):
    records = [line(1, tokens=64, train_loss=3.0, tokens_per_s=32.0), line(2, tokens=128, train_loss=2.0,
                                                                             val_loss=2.2, tokens_per_s=64.0)]
    parsed = [json.loads(text) for text in records]
    assert monitor.ingest(run, parsed) == 9
    parsed[1]["train_loss"] = 1.9  # a resumed attempt logged step 2 again
    monitor.ingest(run, parsed)
    rows = Metric.objects.filter(run=run)
    assert rows.count() == 9
    assert rows.get(name="train_loss", step=2).value == 1.9
    assert sorted(set(rows.values_list("name", flat=True))) == ["time", "tokens", "tokens_per_s", "train_loss", "val_loss"]
    run.refresh_from_db()
    # 8 steps left at 64 tokens/step and 64 tokens/s: 8 seconds.
    assert (run.step, run.tokens, run.tokens_per_s, run.eta_seconds) == (2, 128, 64.0, 8.0)
    # The explorer's copy: each metric's value at its last step; wall-clock time is a coordinate, not a result.
    assert run.final_metrics == {"tokens": 128.0, "tokens_per_s": 64.0, "train_loss": 1.9, "val_loss": 2.2}


def test_final_metrics_follow_the_last_step_when_a_resumed_attempt_relogs_earlier_steps(run):
    monitor.ingest(run, [json.loads(line(step, train_loss=4.0 - step)) for step in (1, 2, 3)])
    monitor.ingest(run, [json.loads(line(2, train_loss=7.0, val_loss=2.5))])  # resumed from step 1's checkpoint
    run.refresh_from_db()
    assert run.final_metrics == {"train_loss": 1.0, "val_loss": 2.5}


def test_non_finite_and_non_numeric_values_are_not_stored(run):
    monitor.ingest(run, [{"step": 3, "train_loss": math.nan, "grad_norm": math.inf, "fp4_error": None,
                          "lr": 0.001, "note": "x", "flag": True}])
    assert list(Metric.objects.filter(run=run).values_list("name", flat=True)) == ["lr"]


def test_the_log_tail_keeps_the_last_fifty_lines(tmp_path):
    path = tmp_path / "attempt-1.log"
    path.write_text("".join(f"line {i}\n" for i in range(120)))
    tail = runfiles.log_tail(path).splitlines()
    assert len(tail) == 50 and tail[0] == "line 70" and tail[-1] == "line 119"


# ------------------------------------------------------------------------------------------ claims, slots


def test_a_claim_succeeds_once_and_slots_run_out(study, settings):
    first, second = [run.attempts.get() for run in study.runs.order_by("id")]
    claim = attempts.attempt_claim(first.pk, host=HOST, slot_ids=[0])
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.attempt.slot == 0
    assert attempts.attempt_claim(first.pk, host=HOST, slot_ids=[0]).outcome is ClaimOutcome.NOT_CLAIMABLE
    assert attempts.attempt_claim(second.pk, host=HOST, slot_ids=[0]).outcome is ClaimOutcome.NO_SLOT
    assert attempts.attempt_claim(second.pk, host="gpu-test-02", slot_ids=[0]).outcome is ClaimOutcome.CLAIMED

    attempts.attempt_finish(first.pk, host=HOST, state=RunStatus.FAILED, reason="test")
    assert not SlotLease.objects.filter(host=HOST).exists()
    assert attempts.attempt_finish(first.pk, host=HOST, state=RunStatus.SUCCEEDED, reason="late") is None


def test_a_preempted_attempt_is_followed_by_a_queued_one(run, django_capture_on_commit_callbacks):
    attempt = run.attempts.get()
    attempts.attempt_claim(attempt.pk, host=HOST, slot_ids=[0])
    attempts.attempt_started(attempt.pk, pid=1, pgid=1)
    with django_capture_on_commit_callbacks() as callbacks:
        attempts.attempt_finish(attempt.pk, host=HOST, state=RunStatus.PREEMPTED, reason="SIGTERM", exit_code=0)
    assert [(a.number, a.state) for a in run.attempts.order_by("number")] == [(1, "preempted"), (2, "queued")]
    assert len(callbacks) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.gpu_hours > 0


# -------------------------------------------------------------------------------------------- reconciler


def _running(attempt: Attempt, *, lease_left: float) -> None:
    attempts.attempt_claim(attempt.pk, host=HOST, slot_ids=[0])
    attempts.attempt_started(attempt.pk, pid=None, pgid=None)
    Attempt.objects.filter(pk=attempt.pk).update(
        lease_expires_at=timezone.now() + timedelta(seconds=lease_left),
        heartbeat_at=timezone.now() - timedelta(seconds=5),
    )


def test_an_expired_lease_preempts_and_requeues_and_the_late_worker_learns_it(run):
    attempt = run.attempts.get()
    _running(attempt, lease_left=-1)

    assert reconciler.expire_leases() == 1

    attempt.refresh_from_db()
    assert attempt.state == RunStatus.PREEMPTED and attempt.reason.startswith(f"lease expired: no heartbeat from {HOST}")
    assert run.attempts.get(number=2).state == RunStatus.QUEUED
    assert not SlotLease.objects.exists()
    assert attempts.attempt_heartbeat(attempt.pk, host=HOST).alive is False


def test_a_live_lease_is_left_alone_and_a_pending_cancel_wins_over_requeue(run, pic):
    attempt = run.attempts.get()
    _running(attempt, lease_left=30)
    assert reconciler.expire_leases() == 0
    beat = attempts.attempt_heartbeat(attempt.pk, host=HOST)
    assert beat.alive and not beat.cancel_requested

    services.run_cancel(run=run, user=pic)
    assert attempts.attempt_heartbeat(attempt.pk, host=HOST).cancel_requested
    Attempt.objects.filter(pk=attempt.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    reconciler.expire_leases()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.attempts.count() == 1


def test_queued_attempts_whose_message_was_lost_are_sent_again(run, redis_server, settings):
    settings.FLIGHTDECK_REQUEUE_AFTER_SECONDS = 10
    attempt = run.attempts.get()
    Attempt.objects.filter(run__study=run.study).update(enqueued_at=timezone.now())
    Attempt.objects.filter(pk=attempt.pk).update(enqueued_at=timezone.now() - timedelta(seconds=11))
    redis_server.clear_broker_state()

    assert reconciler.resend_lost_messages() == 1

    with redis_server.client() as client:
        [message] = client.lrange("gpu", 0, -1)
    assert json.loads(message)["headers"]["argsrepr"] == f"({attempt.pk},)"
    attempt.refresh_from_db()
    assert timezone.now() - attempt.enqueued_at < timedelta(seconds=5)


def test_trainer_processes_without_a_live_attempt_here_are_killed(study, settings):
    settings.FLIGHTDECK_HOST = HOST
    live, finished = [run.attempts.get() for run in study.runs.order_by("id")]
    for attempt in (live, finished):
        attempts.attempt_claim(attempt.pk, host=HOST, slot_ids=[0, 1])
        attempts.attempt_started(attempt.pk, pid=None, pgid=None)
    attempts.attempt_finish(finished.pk, host=HOST, state=RunStatus.FAILED, reason="test")

    def sleeper(attempt: Attempt) -> subprocess.Popen:
        launch = trainer_launch(Attempt.objects.select_related("run__study__baseline").get(pk=attempt.pk))
        # A stand-in for the trainer that ignores SIGTERM, so only the sweep's SIGKILL can end it.
        command = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                   "time.sleep(60)"]
        return LocalBackend().start(type(launch)(command, launch.env, launch.cwd, launch.run_dir,
                                                 launch.log_path)).process

    keep, orphan = sleeper(live), sleeper(finished)
    try:
        assert reconciler.kill_orphans() == 1
        wait_until(lambda: orphan.poll() is not None, timeout=10, what="the orphan to die")
        assert orphan.returncode == -signal.SIGKILL
        time.sleep(0.2)
        assert keep.poll() is None
    finally:
        for process in (keep, orphan):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
