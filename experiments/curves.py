"""Per-arm curves across seeds: align the seeds' series by step, smooth, take mean / min / max and
downsample for the browser. Pure numpy, no database.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from experiments.downsample import lttb_indices

Series = tuple[np.ndarray, np.ndarray]  # (steps, values), steps ascending

# Points per line on the study page: a chart is ~600 px wide and shows up to a dozen lines, so more
# points add bytes, not detail (LTTB keeps the spikes).
MAX_POINTS = 500


@dataclass(frozen=True)
class Band:
    """An arm's mean curve and its min–max envelope across seeds, on shared steps."""

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average with bias correction (TensorBoard's smoothing): the first points are
    not dragged towards zero. ``weight`` 0 returns the values unchanged."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    values = np.asarray(values, dtype=np.float64)
    if weight == 0.0 or len(values) == 0:
        return values
    smoothed = np.empty_like(values)
    running = 0.0
    for index, value in enumerate(values):  # sequential by nature; series are per run, so short enough
        running = weight * running + (1.0 - weight) * value
        smoothed[index] = running / (1.0 - weight ** (index + 1))
    return smoothed


def band(seed_series: Sequence[Series], *, smoothing: float = 0.0, max_points: int = MAX_POINTS) -> Band | None:
    """Mean and min–max across seeds at every step any seed logged (a seed that has not reached a step
    yet simply does not count there), then downsampled with LTTB on the mean curve."""
    seed_series = [(np.asarray(s), np.asarray(v, dtype=np.float64)) for s, v in seed_series if len(s)]
    if not seed_series:
        return None
    steps = np.unique(np.concatenate([s for s, _ in seed_series]))
    grid = np.full((len(seed_series), len(steps)), np.nan)
    for row, (seed_steps, values) in enumerate(seed_series):
        grid[row, np.searchsorted(steps, seed_steps)] = ema(values, smoothing)
    mean, low, high = np.nanmean(grid, axis=0), np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)
    keep = lttb_indices(steps.astype(np.float64), mean, max_points) if len(steps) > max_points else slice(None)
    return Band(steps=steps[keep], mean=mean[keep], low=low[keep], high=high[keep], seeds=len(seed_series))
