"""Studies executed by real Celery workers training the real tiny-ci trainer (through the services)."""
import json
import os
import re

import pytest

from experiments import selectors, services
from experiments.execution import orphans
from experiments.models import Metric, Run, RunStatus, SlotLease
from tests.experiments.helpers import runs_when_done, wait_until

pytestmark = pytest.mark.timeout(300)


def test_an_integration_study_of_two_ideas_and_two_seeds_succeeds_with_metrics(celery_worker, pic, make_idea,
                                                                              fast_baseline):
    latent = make_idea("Latent MoE", {"moe.latent_size": 32})
    slow_lr = make_idea("Lower LR", {"optim.lr": 0.002})
    study = services.study_launch(user=pic, kind="integration", baseline="tiny-fast", ideas=[latent.key, slow_lr.key],
                                  seeds=[0, 1], max_steps=4)

    runs = wait_until(lambda: runs_when_done(study), timeout=270, what="the study's runs to finish")

    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 4
    for run in runs:
        points = Metric.objects.filter(run=run)
        assert list(points.filter(name="train_loss").values_list("step", flat=True)) == [1, 2, 3, 4]
        assert list(points.filter(name="val_loss").values_list("step", flat=True)) == [2, 4]
        assert (run.step, run.tokens) == (4, 4 * 2 * 32) and run.tokens_per_s > 0 and run.gpu_hours > 0
        assert run.code_revision and len(run.code_revision) == 40
        [attempt] = run.attempts.all()
        assert attempt.state == RunStatus.SUCCEEDED and attempt.exit_code == 0 and attempt.log_tail == ""
        assert attempt.pid and attempt.host and attempt.slot in (0, 1)
        # The trainer ran the stored config, and wandb logged under our run id.
        assert json.loads((run.run_dir / "config.json").read_text())["hash"] == run.config_hash
        assert list(run.wandb_dir.glob(f"offline-run-*-{run.public_id}")), "no offline wandb run with our id"
    assert selectors.study_status(runs) == RunStatus.SUCCEEDED
    assert not SlotLease.objects.exists()
    all_arm = study.arms.get(name="all")
    assert {run.config["model"]["moe"]["latent_size"] for run in all_arm.runs.all()} == {32}


def test_a_crashing_trainer_fails_its_run_with_the_log_tail_and_spares_the_others(celery_worker, pic, make_idea,
                                                                                  fast_baseline):
    # Valid as a patch and within what a worker holds (2M of at most 4M tokens a step); only the trainer, having built
    # the corpus, can tell that no window fits in it.
    broken = make_idea("Windows longer than the corpus", {"train.batch_size": 1, "train.seq_len": 2_000_000})
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[broken.key], seeds=[0],
                                  max_steps=2)

    runs = wait_until(lambda: runs_when_done(study), timeout=270, what="both runs to finish")

    by_arm = {run.arms.get().name: run for run in runs}
    assert by_arm["baseline"].status == RunStatus.SUCCEEDED
    failed = by_arm[f"+{broken.key}"]
    assert failed.status == RunStatus.FAILED
    attempt = failed.attempts.get()
    assert attempt.exit_code == 2 and attempt.reason.startswith("the trainer refused its input")
    assert "train.seq_len: 2000000 is longer than" in attempt.log_tail and len(attempt.log_tail.splitlines()) <= 50
    assert not [p for p in orphans.trainer_processes() if p.attempt_id == attempt.pk]


def test_cancel_stops_the_process_groups_within_the_grace_period(celery_worker, pic, make_idea, fast_baseline):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0],
                                  max_steps=100_000)
    wait_until(lambda: not Run.objects.filter(study=study).exclude(status=RunStatus.RUNNING, step__gte=1).exists(),
               timeout=200, what="both runs to train their first step")
    attempts = [run.attempts.get() for run in study.runs.all()]

    assert services.study_cancel(study=study, user=pic) == 2

    grace = 30  # FLIGHTDECK_CANCEL_GRACE_SECONDS default; the trainer should checkpoint and leave well before
    for attempt in attempts:
        wait_until(lambda: not process_group_alive(attempt.pgid), timeout=grace, what="a trainer's group to exit")
    wait_until(lambda: set(study.runs.values_list("status", flat=True)) == {RunStatus.CANCELLED}, timeout=10,
               what="the runs to be cancelled")
    for attempt in attempts:
        attempt.refresh_from_db()
        assert attempt.state == RunStatus.CANCELLED and re.match(r"cancelled at step \d+", attempt.reason)


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
