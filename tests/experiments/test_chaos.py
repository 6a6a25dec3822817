"""Crashes and lost messages: the attempt rows, leases and the reconciler keep every run going exactly once.

Each test starts its own worker(s) and beat with short timings; the trainer is the real tiny-ci one.
"""
import os
import signal

import pytest

from experiments import services
from experiments.execution import launcher, orphans
from experiments.models import Attempt, Metric, Run, RunStatus
from tests.experiments.helpers import runs_when_done, wait_until

pytestmark = pytest.mark.timeout(420)

FAST = {
    "FLIGHTDECK_LEASE_SECONDS": "8",
    "FLIGHTDECK_MONITOR_SECONDS": "1",
    "FLIGHTDECK_RECONCILE_SECONDS": "2",
    "FLIGHTDECK_REQUEUE_AFTER_SECONDS": "4",
    "FLIGHTDECK_WANDB_MODE": "disabled",
}


def launch(user, idea, max_steps: int):
    return services.study_launch(user=user, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[0],
                                 max_steps=max_steps)


def all_succeeded(study) -> list[Run] | None:
    """The study's runs once none is live or preempted; fails at once (with reasons) if one did not succeed."""
    runs = runs_when_done(study)
    if not runs:
        return None
    attempts = Attempt.objects.filter(run__study=study).values_list("run__public_id", "number", "state", "reason")
    assert {run.status for run in runs} == {RunStatus.SUCCEEDED}, list(attempts)
    return runs


def trainers_of(study) -> list[orphans.TrainerProcess]:
    attempt_ids = set(Attempt.objects.filter(run__study=study).values_list("pk", flat=True))
    return [process for process in orphans.trainer_processes() if process.attempt_id in attempt_ids]


def trainer_starts(run: Run) -> int:
    return (run.run_dir / "train.log").read_text().count(" INFO model: ")


STEPS = 40


def test_a_killed_worker_s_runs_resume_from_their_checkpoints_on_a_new_worker(celery_processes, pic, make_idea,
                                                                              fast_baseline):
    doomed = celery_processes.worker(env=FAST)
    # Long enough that both runs are still training, past their step-2 checkpoint, when the poll sees them
    # (an 8-step run could finish between two polls on an idle machine).
    study = launch(pic, make_idea("Lower LR", {"optim.lr": 0.002}), max_steps=STEPS)
    wait_until(lambda: not Run.objects.filter(study=study).exclude(status=RunStatus.RUNNING, step__gte=3).exists(),
               timeout=240, what="both runs to pass their step-2 checkpoint")

    doomed.kill()
    # The trainers die with their worker (parent-death signal): nothing is left running unsupervised.
    wait_until(lambda: not trainers_of(study), timeout=30, what="the killed worker's trainers to exit")

    celery_processes.worker(env=FAST)
    celery_processes.beat(env=FAST)
    runs = wait_until(lambda: all_succeeded(study), timeout=300, what="the runs to resume and succeed")

    for run in runs:
        attempts = list(run.attempts.order_by("number"))
        assert attempts[0].state == RunStatus.PREEMPTED and attempts[0].reason.startswith("lease expired")
        assert attempts[-1].state == RunStatus.SUCCEEDED and attempts[-1].resumed_from_step >= 2
        steps = list(Metric.objects.filter(run=run, name="train_loss").order_by("step").values_list("step", flat=True))
        assert steps == list(range(1, STEPS + 1)), "one train_loss point per step, none missing, none repeated"
        val_steps = list(Metric.objects.filter(run=run, name="val_loss").order_by("step").values_list("step", flat=True))
        assert val_steps == list(range(2, STEPS + 1, 2))
        assert trainer_starts(run) == len(attempts)
    assert not trainers_of(study)


def test_a_warm_worker_shutdown_preempts_its_runs_at_a_checkpoint(celery_processes, pic, make_idea, fast_baseline):
    worker = celery_processes.worker(env=FAST)
    study = launch(pic, make_idea("Lower LR", {"optim.lr": 0.002}), max_steps=100_000)
    wait_until(lambda: not Run.objects.filter(study=study).exclude(status=RunStatus.RUNNING, step__gte=1).exists(),
               timeout=240, what="both runs to train")

    os.kill(worker.pid, signal.SIGTERM)  # as systemd stops it (KillMode=mixed): the main process only
    worker.popen.wait(timeout=60)

    for run in study.runs.all():
        first, second = run.attempts.order_by("number")
        assert first.state == RunStatus.PREEMPTED and first.exit_code == 0, first.reason
        assert second.state == RunStatus.QUEUED
        assert launcher.latest_checkpoint_step(run.run_dir) >= 1
    assert not trainers_of(study)


def test_a_run_longer_than_the_visibility_timeout_is_started_once(celery_processes, pic, make_idea, fast_baseline):
    short_visibility = {**FAST, "FLIGHTDECK_VISIBILITY_TIMEOUT": "5"}
    celery_processes.worker(env=short_visibility, concurrency=1)
    celery_processes.worker(env=short_visibility, concurrency=1)
    # 400 steps outlast the 5 s visibility timeout with room to spare: 80 steps took only 4.2 s in CI, start-up
    # included, and 400 took 15 s on an idle 2-core machine.
    study = launch(pic, make_idea("Lower LR", {"optim.lr": 0.002}), max_steps=400)

    runs = wait_until(lambda: all_succeeded(study), timeout=300, what="both runs to succeed")

    for run in runs:
        [attempt] = run.attempts.all()
        assert (attempt.finished_at - attempt.started_at).total_seconds() > 5, "the run must outlast the timeout"
        assert trainer_starts(run) == 1


def test_runs_queued_when_redis_restarts_empty_still_all_run(celery_processes, redis_server, pic, make_idea,
                                                             fast_baseline):
    study = launch(pic, make_idea("Lower LR", {"optim.lr": 0.002}), max_steps=2)
    assert set(study.runs.values_list("status", flat=True)) == {RunStatus.QUEUED}

    redis_server.kill()
    redis_server.start()
    redis_server.clear_broker_state()  # it came back without the start messages

    celery_processes.worker(env=FAST)
    celery_processes.beat(env=FAST)
    runs = wait_until(lambda: all_succeeded(study), timeout=300, what="the queued runs to be re-sent and succeed")
    assert all(run.attempts.count() == 1 for run in runs), "a re-sent message reuses the queued attempt"
