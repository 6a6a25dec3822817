"""LTTB downsampling, checked against a plain-Python transcription of the published algorithm."""
import math

import numpy as np
import pytest

from experiments.downsample import lttb, lttb_indices


def reference_lttb(points: list[tuple[float, float]], threshold: int) -> list[int]:
    """Steinarsson's LTTB, one point at a time, in float64 Python arithmetic."""
    n = len(points)
    every = (n - 2) / (threshold - 2)
    chosen, previous = [0], 0
    for bucket in range(threshold - 2):
        start, stop = math.floor(bucket * every) + 1, math.floor((bucket + 1) * every) + 1
        next_start, next_stop = stop, min(math.floor((bucket + 2) * every) + 1, n - 1)
        if bucket == threshold - 3:
            next_start, next_stop = n - 1, n
        next_points = points[next_start:next_stop]
        avg_x = sum(p[0] for p in next_points) / len(next_points)
        avg_y = sum(p[1] for p in next_points) / len(next_points)
        ax, ay = points[previous]
        best, best_area = start, -1.0
        for index in range(start, stop):
            x, y = points[index]
            area = abs((ax - avg_x) * (y - ay) - (ax - x) * (avg_y - ay))
            if area > best_area:
                best, best_area = index, area
        chosen.append(best)
        previous = best
    return chosen + [n - 1]


@pytest.mark.parametrize("n, threshold", [(10, 3), (101, 7), (1000, 50), (2_345, 400), (5_000, 4_999)])
def test_it_matches_the_reference_algorithm(n, threshold):
    rng = np.random.default_rng(n)
    x = np.cumsum(rng.uniform(0.5, 2.0, n))  # uneven spacing, like steps with gaps
    y = np.sin(x / 30) + rng.normal(0, 0.3, n)

    assert lttb_indices(x, y, threshold).tolist() == reference_lttb(list(zip(x.tolist(), y.tolist())), threshold)


def test_it_keeps_first_and_last_point_and_returns_the_requested_length():
    x = np.arange(100_000, dtype=float)
    y = np.log1p(x)

    keep = lttb_indices(x, y, 500)

    assert len(keep) == 500 and keep[0] == 0 and keep[-1] == 99_999
    assert np.all(np.diff(keep) > 0)


def test_it_keeps_isolated_spikes_and_dips():
    x = np.arange(1_000_000, dtype=float)
    y = np.random.default_rng(0).normal(0.0, 0.01, len(x))
    y[123_456], y[777_777] = 50.0, -40.0  # a loss spike and a dip among a million points

    xs, ys = lttb(x, y, 1_000)

    assert 123_456 in xs and 777_777 in xs
    assert ys.max() == 50.0 and ys.min() == -40.0


def test_short_series_come_back_whole():
    assert lttb_indices(np.arange(5.0), np.ones(5), 10).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("threshold", [0, 2])
def test_it_refuses_a_threshold_below_three(threshold):
    with pytest.raises(ValueError, match="threshold must be at least 3"):
        lttb_indices(np.arange(10.0), np.arange(10.0), threshold)


def test_it_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="one length"):
        lttb_indices(np.arange(10.0), np.arange(9.0), 5)
