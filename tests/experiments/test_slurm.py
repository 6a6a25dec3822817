"""The slurm backend through submitit's LocalExecutor: same trainer, same files, watched by a worker on `slurm`."""
import pytest

from experiments import services
from experiments.models import Metric, RunStatus, SlotLease
from tests.experiments.conftest import FAST_OVERRIDES
from tests.experiments.helpers import runs_when_done, wait_until

pytestmark = pytest.mark.timeout(300)


def test_a_study_on_a_slurm_baseline_runs_as_submitit_jobs(celery_processes, pic, make_idea):
    services.baseline_save(name="tiny-slurm", recipe="tiny-ci", overrides=FAST_OVERRIDES, backend="slurm")
    celery_processes.worker(queues=("default", "slurm"), env={
        "FLIGHTDECK_SLURM_EXECUTOR": "local", "FLIGHTDECK_MONITOR_SECONDS": "1", "FLIGHTDECK_WANDB_MODE": "disabled",
    })
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-slurm",
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0], max_steps=3)
    assert study.backend == "slurm"

    runs = wait_until(lambda: runs_when_done(study), timeout=240, what="the slurm jobs to finish")

    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 2
    for run in runs:
        [attempt] = run.attempts.all()
        assert attempt.backend == "slurm" and attempt.external_id.isdigit() and attempt.slot is None
        assert list(Metric.objects.filter(run=run, name="train_loss").values_list("step", flat=True)) == [1, 2, 3]
        assert "step 3" in attempt.log_path.read_text()
    assert not SlotLease.objects.exists(), "slurm jobs do not hold local slots"
