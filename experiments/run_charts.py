"""Charts of single runs: the run page's panel of every logged metric (drawn in the browser with a choice of x
axis, log scale, smoothing and a zoom shared across panels) and the compare page's overlaid curves.

Series are downsampled with LTTB on the server, so a run of a million steps sends a few thousand points.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from experiments import charts, selectors
from experiments.downsample import lttb_indices
from experiments.models import Run

MAX_POINTS = 1000
# Logged as coordinates for the x axis, not charted as panels.
COORDINATES = ("time", "tokens")
# Drawn first and in this order; the first four and the feature metrics get a panel even when empty, so a
# missing curve is explained instead of silently absent.
PREFERRED = ("train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "peak_mem_mb", "moe_imbalance", "fp4_error")
ALWAYS_SHOWN = ("train_loss", "val_loss", "moe_imbalance", "fp4_error")
TITLES = {"train_loss": "Training loss", "val_loss": "Validation loss", "lr": "Learning rate",
          "grad_norm": "Gradient norm", "tokens_per_s": "Throughput (tokens/s)", "peak_mem_mb": "Peak memory (MB)",
          "moe_imbalance": "MoE load imbalance", "fp4_error": "FP4 quantisation error"}


@dataclass(frozen=True)
class Panel:
    name: str  # the metric name, any characters ('val_loss/wiki')
    title: str
    series: dict | None  # {"step": [...], "tokens": [...] | None, "seconds": [...] | None, "value": [...]}
    empty: str = ""


def _downsampled(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(steps) > MAX_POINTS:
        keep = lttb_indices(steps.astype(np.float64), values, MAX_POINTS)
        return steps[keep], values[keep]
    return steps, values


def _at_steps(coordinate: tuple[np.ndarray, np.ndarray] | None, steps: np.ndarray, *, origin: bool = False) -> list | None:
    """A coordinate series (tokens, time) read at ``steps`` by linear interpolation; None when not logged."""
    if coordinate is None or not len(coordinate[0]):
        return None
    known_steps, values = coordinate
    values = values - values[0] if origin else values
    return np.interp(steps, known_steps, values).tolist()


def title_of(name: str) -> str:
    base, _, corpus = name.partition("/")
    title = TITLES.get(base, base.replace("_", " "))
    return f"{title} — {corpus}" if corpus else title


def run_panels(run: Run) -> list[Panel]:
    """A panel per metric ``run`` logged (preferred ones first, then by name, per-corpus ones after their
    parent), plus empty panels for the core metrics saying why they are empty."""
    arrays = selectors.run_metric_arrays(run.pk)
    names = [name for name in PREFERRED if name in arrays or name in ALWAYS_SHOWN]
    names += sorted(name for name in arrays if name not in PREFERRED and name not in COORDINATES)
    panels = []
    for name in names:
        if name not in arrays:
            panels.append(Panel(name, title_of(name), None, charts.empty_reason(name, [run.config_flat])))
            continue
        steps, values = _downsampled(*arrays[name])
        series = {"step": steps.tolist(), "value": values.tolist(),
                  "tokens": _at_steps(arrays.get("tokens"), steps),
                  "seconds": _at_steps(arrays.get("time"), steps, origin=True)}
        panels.append(Panel(name, title_of(name), series))
    return panels


def compare_charts(runs: Sequence[Run]) -> list[charts.Chart]:
    """One chart per metric any of ``runs`` logged, a line per run (its public id), downsampled."""
    ids = [run.pk for run in runs]
    names = sorted({name for run in runs for name in run.final_metrics} - set(COORDINATES),
                   key=lambda name: (PREFERRED.index(name) if name in PREFERRED else len(PREFERRED), name))
    colours = charts.PALETTE
    result = []
    for index, name in enumerate(names):
        series = selectors.metric_arrays(ids, name)
        data = []
        for position, run in enumerate(runs):
            if run.pk not in series:
                continue
            steps, values = _downsampled(*series[run.pk])
            data.append({"type": "scatter", "mode": "lines", "name": run.public_id, "x": steps.tolist(),
                         "y": values.tolist(), "line": {"color": colours[position % len(colours)], "width": 2}})
        layout = charts.base_layout(xaxis={"title": {"text": "step"}, "gridcolor": charts.GRID, "zeroline": False},
                                    yaxis={"title": {"text": name}, "gridcolor": charts.GRID, "zeroline": False})
        result.append(charts.Chart(f"compare-{index}", title_of(name), {"data": data, "layout": layout}))
    return result
