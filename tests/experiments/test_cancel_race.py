"""Cancel against success, with real trainer processes and no worker: the test plays the worker's part
(claim, start the trainer, ``Supervision.follow``) so it can put the cancel exactly where the race is.
A trainer that has written its final ``succeeded`` wins: the run stays succeeded with its result, and
the person who cancelled is told (409 in the API, a message on the page)."""
import pytest
from rest_framework.test import APIClient

from experiments import results, services
from experiments.execution import attempts, monitor
from experiments.execution.backends.local import LocalBackend
from experiments.execution.launcher import latest_checkpoint_step, trainer_launch
from experiments.execution.supervisor import Supervision
from experiments.models import Attempt, Run, RunStatus
from tests.experiments.helpers import wait_until

HOST = "gpu-test-01"


@pytest.fixture
def baseline_runs(pic, make_idea, fast_baseline, settings, tmp_path) -> list[Run]:
    settings.FLIGHTDECK_RUNS_DIR = tmp_path / "runs"
    settings.FLIGHTDECK_HOST = HOST
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0, 1], max_steps=2)
    return list(study.arms.get(kind="baseline").runs.order_by("seed"))


def _claimed(run: Run) -> Attempt:
    claim = attempts.attempt_claim(run.attempts.get().pk, host=HOST, slot_ids=[run.seed])
    return Attempt.objects.select_related("run__study__baseline").get(pk=claim.attempt.pk)


def _trainer_started(attempt: Attempt):
    """Start the claimed attempt's real trainer as the worker would; returns what ``follow`` needs."""
    launch = trainer_launch(attempt)
    resumed_from = latest_checkpoint_step(launch.run_dir)
    backend = LocalBackend()
    handle = backend.start(launch)
    return Supervision(attempt, backend, HOST), handle, launch, resumed_from


def test_a_cancel_that_loses_the_race_to_success_leaves_the_run_succeeded_and_says_so(baseline_runs, pic, web):
    told_too_late, asked_in_time = baseline_runs
    api = APIClient()
    api.force_authenticate(pic)
    claimed = [_claimed(run) for run in baseline_runs]
    # The cancel of asked_in_time reaches the database first; its worker has not looked yet.
    services.run_cancel(run=asked_in_time, user=pic)
    assert asked_in_time.attempts.get().cancel_requested_at is not None

    trainers = [_trainer_started(attempt) for attempt in claimed]
    for _, handle, launch, _ in trainers:
        wait_until(lambda: handle.poll() is not None, timeout=120, what="the trainer to exit")
        assert handle.poll() == 0 and monitor.read_status(launch.run_dir)["status"] == "succeeded"

    # told_too_late: the trainer has finished, its worker has not recorded it: the cancel is refused.
    answer = api.post(f"/api/v1/runs/{told_too_late.pk}/cancel/")
    assert answer.status_code == 409, answer.content
    assert answer.json()["status"] == "succeeded"
    assert "already finished training; the run stays succeeded" in answer.json()["detail"]
    page = web.post(f"/experiments/runs/{told_too_late.pk}/cancel/", follow=True)
    assert "already finished training; the run stays succeeded" in page.content.decode()
    assert told_too_late.attempts.get().cancel_requested_at is None

    for supervision, handle, launch, resumed_from in trainers:
        supervision.follow(handle, launch, resumed_from)

    for run in baseline_runs:
        run.refresh_from_db()
        attempt = run.attempts.get()
        assert (run.status, attempt.state, attempt.exit_code) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED, 0)
        assert attempt.finished_at is not None and attempt.lease_expires_at is None
    assert asked_in_time.attempts.get().reason.endswith("the cancel request came after training had finished")
    baseline = next(arm for arm in results.study_results(asked_in_time.study).arms if arm.kind == "baseline")
    assert sorted(baseline.values) == [0, 1]  # both seeds count: no result was thrown away
