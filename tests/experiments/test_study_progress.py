"""The study's progress line: the ETA counts queued runs, and the page's "Cancel live runs" button goes away
with the poll that sees the study end."""
import pytest

from experiments import services
from experiments.models import Run, RunStatus
from experiments.progress import study_progress
from tests.experiments.finished_runs import finish_study


def _run(status: str, *, step: int = 0, eta: float | None = None) -> Run:
    """100 steps of 64 tokens at 64 tokens/s: 100 s per run once measured."""
    measured = step > 0
    return Run(status=status, step=step, max_steps=100, tokens=64 * step, tokens_per_s=64.0 if measured else None,
               eta_seconds=eta)


def test_the_eta_waits_for_queued_runs_to_get_a_slot():
    runs = [_run(RunStatus.RUNNING, step=90, eta=10.0), _run(RunStatus.RUNNING, step=80, eta=20.0),
            *[_run(RunStatus.QUEUED) for _ in range(6)], _run(RunStatus.SUCCEEDED, step=100), _run(RunStatus.SUCCEEDED, step=100)]

    progress = study_progress(runs)

    # Six queued runs on two slots: three more rounds of 100 s, the first starting when a slot frees (10 s).
    assert progress.eta_seconds == pytest.approx(10.0 + 3 * 100.0)
    assert (progress.done, progress.total, progress.queued) == (2, 10, 6)


def test_without_queued_runs_the_eta_is_the_longest_running_one():
    runs = [_run(RunStatus.RUNNING, step=90, eta=10.0), _run(RunStatus.RUNNING, step=50, eta=50.0)]
    assert study_progress(runs).eta_seconds == 50.0


def test_no_eta_before_any_run_measured_its_speed():
    assert study_progress([_run(RunStatus.QUEUED), _run(RunStatus.QUEUED)]).eta_seconds is None


def test_the_cancel_button_leaves_with_the_poll_that_sees_the_study_end(web, pic, make_idea, fast_baseline):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Latent", {"moe.latent_size": 32}).key], seeds=[0], max_steps=5)
    page = web.get(f"/experiments/studies/{study.pk}/").content.decode()
    assert '<span id="study-cancel"><form' in page and "2 queued" in page
    assert "hx-swap-oob" not in web.get(f"/experiments/studies/{study.pk}/progress/").content.decode()

    finish_study(study)
    fragment = web.get(f"/experiments/studies/{study.pk}/progress/").content.decode()
    assert '<span id="study-cancel" hx-swap-oob="true"></span>' in fragment
    assert "Cancel live runs" not in web.get(f"/experiments/studies/{study.pk}/").content.decode()
