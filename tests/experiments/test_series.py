"""Runs' stored chart series (experiments.series): made when a run ends, checked against a plain-Python
bucketing, and read by the study page instead of every logged point."""
import math

import numpy as np
import pytest

from experiments import charts, series, services
from experiments.execution import attempts
from experiments.models import Attempt, Metric, Run, RunSeries, RunStatus
from tests.experiments.finished_runs import finish_study


@pytest.fixture
def study(pic, make_idea, fast_baseline):
    return services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                 ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0, 1], max_steps=10)


def _reference_buckets(steps: list[int], values: list[float], max_points: int) -> tuple[list[int], list[float]]:
    """Naive float64 bucketing: width ceil(last step / max_points); per bucket its last step and mean."""
    width = math.ceil(steps[-1] / max_points)
    grouped: dict[int, list[tuple[int, float]]] = {}
    for step, value in zip(steps, values):
        grouped.setdefault((step - 1) // width, []).append((step, value))
    kept = [grouped[index] for index in sorted(grouped)]
    return [points[-1][0] for points in kept], [sum(v for _, v in points) / len(points) for points in kept]


@pytest.mark.parametrize("steps", [list(range(1, 10_001)), list(range(1, 10_001, 3)), list(range(5, 3001, 7))])
def test_downsample_matches_a_naive_bucketing(steps):
    values = [math.sin(step / 50) + 0.001 * step for step in steps]
    (kept_steps, kept_values), width = series.downsample(np.array(steps), np.array(values), max_points=400)
    expected_steps, expected_values = _reference_buckets(steps, values, 400)
    assert kept_steps.tolist() == expected_steps
    np.testing.assert_allclose(kept_values, expected_values, rtol=0, atol=1e-12)
    assert width == math.ceil(steps[-1] / 400) and len(kept_steps) <= 400


def test_a_short_series_is_kept_as_it_is():
    steps, values = np.arange(1, 51), np.linspace(3, 2, 50)
    (kept_steps, kept_values), width = series.downsample(steps, values, max_points=100)
    assert width == 1 and kept_steps.tolist() == steps.tolist() and kept_values.tolist() == values.tolist()


def _running_attempt(run: Run) -> Attempt:
    attempt = run.attempts.get()
    attempts.attempt_claim(attempt.pk, host="h1", slot_ids=None)
    attempts.attempt_started(attempt.pk, pid=None, pgid=None, code_revision="abc", code_dirty=False)
    return attempt


def test_a_run_stores_its_chart_series_when_it_ends(study, django_capture_on_commit_callbacks):
    run = study.runs.order_by("pk").first()
    attempt = _running_attempt(run)
    Metric.objects.bulk_create(Metric(run=run, step=step, name="train_loss", value=1.0 / step)
                               for step in range(1, 5001))
    with django_capture_on_commit_callbacks(execute=True):
        attempts.attempt_finish(attempt.pk, host="h1", state=RunStatus.SUCCEEDED, exit_code=0, reason="done")

    stored = RunSeries.objects.get(run=run, name="train_loss")
    assert stored.source_points == 5000 and len(stored.steps) == 1000  # buckets of ceil(5000 / 1000) = 5 steps
    assert stored.bucket == 5 and stored.steps[-1] == 5000
    assert stored.mean == pytest.approx(np.mean([1.0 / step for step in range(1, 5001)])) and stored.maximum == 1.0
    assert not RunSeries.objects.filter(run=run).exclude(name="train_loss").exists()  # nothing else logged


def test_the_study_charts_read_stored_series_and_smooth_them_over_the_same_steps(study):
    finish_study(study, steps=3000, eval_every=100)
    runs = list(Run.objects.filter(study=study))
    names = [curve.name for curve in charts.CURVES]
    raw = series.chart_arrays(runs, names, smoothing={"train_loss": 0.9})
    for run in runs:
        series.run_series_refresh(run_id=run.pk, names=charts.STORED_METRICS)
    stored = series.chart_arrays(runs, names, smoothing={"train_loss": 0.9})

    run = runs[0]
    steps, values = stored["train_loss"][run.pk]
    assert len(steps) == 1000 < len(raw["train_loss"][run.pk][0])  # buckets of 3 steps
    # The stored curve, smoothed with the weight per bucket, follows the raw curve smoothed per step.
    raw_steps, raw_values = raw["train_loss"][run.pk]
    np.testing.assert_allclose(values, np.interp(steps, raw_steps, raw_values), rtol=0, atol=0.02)
    assert stored["val_loss"][run.pk][0].tolist() == list(range(100, 3001, 100))  # few points: kept as logged
    # Unsmoothed metrics are bucket means of the raw points.
    plain_steps, plain_values = stored["moe_imbalance"][run.pk]
    assert plain_values[-1] == pytest.approx(np.mean([1.0 + 1.0 / s for s in (2998, 2999, 3000)]))


def test_stored_aggregates_equal_the_ones_computed_in_sql(study):
    finish_study(study, steps=300, eval_every=100)
    runs = list(Run.objects.filter(study=study))
    hows = {name: how for name, _, _, how in charts.BARS}
    from_sql = series.chart_aggregates(runs, hows)
    for run in runs:
        series.run_series_refresh(run_id=run.pk, names=charts.STORED_METRICS)
    from_stored = series.chart_aggregates(runs, hows)
    assert set(from_sql["peak_mem_mb"]) == {run.pk for run in runs}
    for name in hows:
        assert from_stored[name] == pytest.approx(from_sql[name], rel=1e-12)


def test_the_study_page_reads_fewer_queries_once_series_are_stored(
        study, web, django_assert_max_num_queries):
    finish_study(study, steps=40, eval_every=10)
    url = f"/experiments/studies/{study.pk}/"
    assert web.get(url).status_code == 200
    for run in study.runs.all():
        series.run_series_refresh(run_id=run.pk, names=charts.STORED_METRICS)
    with django_assert_max_num_queries(14):  # test_pages' 17 less the raw curves and the two raw aggregates
        response = web.get(url, {"smooth": "0.6"})  # a smoothing not cached yet
    assert response.status_code == 200 and "figure-train_loss" in response.content.decode()
