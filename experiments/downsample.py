"""Largest-Triangle-Three-Buckets downsampling (Steinarsson, 2013), so a chart of a million points keeps
its shape — spikes, plateaus, the first and last point — with a few thousand.

1. Keep the first and the last point.
2. Split the points in between into ``threshold - 2`` buckets of (almost) equal size.
3. Walking left to right, keep from each bucket the point that forms the largest triangle with the point
   kept from the previous bucket and the mean of the next bucket.

Step 3 depends on the previous choice, so buckets are visited in order; the work inside a bucket (the
triangle areas of all its points) is one short numpy expression.
"""
from __future__ import annotations

import numpy as np


def lttb_indices(x: np.ndarray, y: np.ndarray, threshold: int) -> np.ndarray:
    """Indices (ascending) of at most ``threshold`` points of ``(x, y)`` chosen by LTTB.

    ``x`` must be sorted ascending. With ``threshold >= len(x)`` every index is returned.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d arrays of one length, got shapes {x.shape} and {y.shape}")
    if threshold < 3:
        raise ValueError(f"threshold must be at least 3 (first, last and one bucket), got {threshold}")
    n = len(x)
    if threshold >= n:
        return np.arange(n)

    # Bucket b (0-based, among the points 1..n-2) spans [edges[b], edges[b+1]).
    edges = np.floor(np.linspace(1, n - 1, threshold - 1)).astype(np.int64)
    # Mean of each bucket, and a virtual last bucket holding only the final point.
    sums_x = np.add.reduceat(x[1 : n - 1], edges[:-1] - 1)
    sums_y = np.add.reduceat(y[1 : n - 1], edges[:-1] - 1)
    sizes = np.diff(edges)
    mean_x = np.append(sums_x / sizes, x[-1])
    mean_y = np.append(sums_y / sizes, y[-1])

    # The doubled area of the triangle (previous point P, candidate i, next bucket's mean N) is
    # |P.x·(y_i − N.y) + P.y·(N.x − x_i) + (x_i·N.y − N.x·y_i)|: linear in P. The candidate-side terms are
    # computed for all points at once, leaving three multiply-adds per bucket in the sequential walk.
    next_x = np.repeat(mean_x[1:], sizes)
    next_y = np.repeat(mean_y[1:], sizes)
    inner_x, inner_y = x[1 : n - 1], y[1 : n - 1]
    by_px, by_py, constant = inner_y - next_y, next_x - inner_x, inner_x * next_y - next_x * inner_y

    chosen = np.empty(threshold, dtype=np.int64)
    chosen[0], chosen[-1] = 0, n - 1
    previous = 0
    bounds = (edges - 1).tolist()  # bucket limits as offsets into the inner points; Python ints index fastest
    for bucket in range(threshold - 2):
        start, stop = bounds[bucket], bounds[bucket + 1]
        areas = np.abs(x[previous] * by_px[start:stop] + y[previous] * by_py[start:stop] + constant[start:stop])
        previous = start + int(areas.argmax()) + 1
        chosen[bucket + 1] = previous
    return chosen


def lttb(x: np.ndarray, y: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """The LTTB-downsampled ``(x, y)``; see :func:`lttb_indices`."""
    keep = lttb_indices(x, y, threshold)
    return np.asarray(x)[keep], np.asarray(y)[keep]
