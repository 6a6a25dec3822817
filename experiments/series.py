"""Runs' chart curves (and the mean / max the bar charts show), computed once when a run ends instead of on
every first view of a study page.

A finished run's curve of each charted metric is stored as a ``RunSeries`` of at most ``STORED_POINTS``
points: the logged steps are cut into buckets of equal width in steps (the width depends only on the last
step, so seeds of one arm logged on the same steps get the same kept steps and still line up for the
mean/min/max band), and each bucket keeps its last step and the mean of its values. The study page reads these
few thousand numbers per run; live runs (and runs that ended before series existed) are read point by point.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from django.db import transaction

from experiments import selectors
from experiments.curves import Series, ema
from experiments.models import Metric, Run, RunSeries

# Twice the points a chart line finally gets (curves.MAX_POINTS): LTTB on the arm's mean still has detail to
# choose from, and a 10,000-step run shrinks 10×. LTTB and decoding cost grow with it.
STORED_POINTS = 1000


def downsample(steps: np.ndarray, values: np.ndarray, *, max_points: int = STORED_POINTS) -> tuple[Series, int]:
    """``((steps, values), bucket width in steps)``: the series itself when it has at most ``max_points``
    points, else one point per bucket of ``ceil(last step / max_points)`` steps (its last step, its mean)."""
    if len(steps) <= max_points:
        return (steps, values), 1
    width = math.ceil(int(steps[-1]) / max_points)
    buckets = (steps - 1) // width if steps[0] >= 1 else steps // width
    starts = np.flatnonzero(np.diff(buckets, prepend=buckets[0] - 1))
    sums = np.add.reduceat(values, starts)
    counts = np.diff(np.append(starts, len(values)))
    last = np.append(starts[1:], len(steps)) - 1
    return (steps[last], sums / counts), width


@transaction.atomic
def run_series_refresh(*, run_id: int, names: Sequence[str]) -> list[RunSeries]:
    """(Re)write the stored series of ``names`` for one run from its logged points."""
    arrays = {name: selectors.metric_arrays([run_id], name).get(run_id) for name in names}
    RunSeries.objects.filter(run_id=run_id, name__in=names).delete()
    rows = []
    for name, series in arrays.items():
        if series is None:
            continue
        (steps, values), width = downsample(*series)
        rows.append(RunSeries(run_id=run_id, name=name, steps=steps.tolist(), values=values.tolist(),
                              bucket=width, source_points=len(series[0]), mean=float(np.mean(series[1])),
                              maximum=float(np.max(series[1]))))
    return RunSeries.objects.bulk_create(rows)


def refresh_when_committed(run: Run, names: Sequence[str]) -> None:
    """Store ``run``'s series once the transaction that ended it commits (after it, its points are final).
    Robust: a failure is logged and leaves the page reading the run's raw points, never failing the close."""
    transaction.on_commit(lambda: run_series_refresh(run_id=run.pk, names=names), robust=True)


def _raw_arrays(run_ids: Sequence[int], names: Sequence[str]) -> dict[str, dict[int, Series]]:
    """``{name: {run_id: (steps, values)}}`` of every point of ``names``, one query for all of them."""
    if not run_ids:
        return {}
    rows = (Metric.objects.filter(run_id__in=run_ids, name__in=names)
            .order_by("name", "run_id", "step").values_list("name", "run_id", "step", "value"))
    by_name: dict[str, list[tuple[int, int, float]]] = {}
    for name, run_id, step, value in rows.iterator(chunk_size=20_000):
        by_name.setdefault(name, []).append((run_id, step, value))
    arrays = {}
    for name, points in by_name.items():
        table = np.array(points, dtype=np.float64)
        run_column = table[:, 0].astype(np.int64)
        starts = np.flatnonzero(np.diff(run_column, prepend=run_column[0] - 1))
        arrays[name] = {int(run_column[start]): (table[start:stop, 1].astype(np.int64), table[start:stop, 2])
                        for start, stop in zip(starts, [*starts[1:], len(table)])}
    return arrays


def chart_arrays(runs: Iterable[Run], names: Sequence[str], *, smoothing: dict[str, float]) -> dict[str, dict[int, Series]]:
    """``{name: {run_id: (steps, values)}}`` of the charted metrics ``names``, each smoothed with the EMA
    weight ``smoothing[name]`` (0 when absent): the stored series of ended runs (the weight raised to the bucket
    width, so a smoothed curve decays over as many steps as the raw one) and the raw points of runs without
    them (live runs, and runs that ended before series were stored). Two queries at most."""
    runs = list(runs)
    ended = [run.pk for run in runs if run.finished_at is not None]
    stored = list(RunSeries.objects.filter(run_id__in=ended, name__in=names)
                  .values_list("name", "run_id", "steps", "values", "bucket")) if ended else []
    have = {(name, run_id) for name, run_id, *_ in stored}
    # Raw reads only of the metrics and runs some stored series is missing for (live runs; metrics not stored,
    # such as the per-corpus validation losses).
    missing_names = [name for name in names if any((name, run.pk) not in have for run in runs)]
    missing = [run.pk for run in runs if any((name, run.pk) not in have for name in missing_names)]
    arrays: dict[str, dict[int, Series]] = {name: {} for name in names}
    for name, by_run in _raw_arrays(missing, missing_names).items():
        weight = smoothing.get(name, 0.0)
        arrays[name].update({run_id: (steps, ema(values, weight)) for run_id, (steps, values) in by_run.items()
                             if (name, run_id) not in have})
    for name, run_id, steps, values, bucket in stored:
        weight = smoothing.get(name, 0.0)
        arrays[name][run_id] = (np.asarray(steps, dtype=np.int64),
                                ema(np.asarray(values, dtype=np.float64), weight ** bucket if weight else 0.0))
    return arrays


def chart_aggregates(runs: Iterable[Run], hows: dict[str, str]) -> dict[str, dict[int, float]]:
    """``{name: {run_id: mean or max over all logged points}}`` for ``hows`` (``{name: "mean" | "max"}``): stored
    with the series of ended runs, aggregated in SQL for the rest. One query, plus one per metric that some run
    has no stored series of."""
    runs = list(runs)
    ended = [run.pk for run in runs if run.finished_at is not None]
    stored = list(RunSeries.objects.filter(run_id__in=ended, name__in=list(hows))
                  .values_list("name", "run_id", "mean", "maximum")) if ended else []
    results: dict[str, dict[int, float]] = {name: {} for name in hows}
    for name, run_id, mean, maximum in stored:
        results[name][run_id] = mean if hows[name] == "mean" else maximum
    for name, how in hows.items():
        missing = [run.pk for run in runs if run.pk not in results[name]]
        if missing:
            results[name].update(selectors.per_run_aggregate(missing, name, how))
    return results
