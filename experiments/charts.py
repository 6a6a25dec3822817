"""Plotly figures of a study, built on the server as plain JSON-ready dicts (``{"data": [...], "layout":
{...}}``) and drawn by the locally served plotly.js (templates/experiments/_chart.html).

Curves are per arm: the mean across seeds with a shaded min–max band, downsampled with LTTB so a study of
millions of points sends a few thousand per line. Building dicts directly (instead of ``go.Figure``) keeps
a large study page fast; tests validate the output against plotly's schema.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.core.cache import cache
from redis import RedisError

from experiments import curves, selectors, series
from experiments.analysis import ArmResult
from experiments.curves import Band
from experiments.models import LIVE_STATES, RunStatus, Study
from experiments.results import PER_CORPUS_PREFIX, per_corpus_metrics
from modelzoo.config_effects import inactive_sections

BASELINE_COLOUR = "#445062"
PALETTE = ["#3a4fd8", "#c2362f", "#1f7a4d", "#9a6200", "#6136c2", "#0f766e", "#b03029", "#1f5bb8", "#8a5a00"]
GRID = "#e3e6eb"
SMOOTHING_CHOICES = (0.0, 0.6, 0.9, 0.97)


@dataclass(frozen=True)
class CurveMetric:
    name: str  # metric name in metrics.jsonl
    title: str
    axis: str
    smoothable: bool


CURVES = (  # a run's series of these are stored when it ends (experiments.series)
    CurveMetric("train_loss", "Training loss", "loss", True),
    CurveMetric("val_loss", "Validation loss", "loss", False),
    CurveMetric("moe_imbalance", "MoE load imbalance", "max / mean expert load", False),
    CurveMetric("fp4_error", "FP4 quantisation error", "relative error", False),
)

# Per-run bars: (metric, title, axis, aggregate over the run's steps).
BARS = (("tokens_per_s", "Throughput", "tokens / s", "mean"), ("peak_mem_mb", "Peak memory", "MB", "max"))
# What a run stores when it ends (experiments.series), so the study page need not read its every point.
STORED_METRICS = tuple(curve.name for curve in CURVES) + tuple(name for name, *_ in BARS)


def arm_colours(arm_names: Sequence[str]) -> dict[str, str]:
    """A stable colour per arm: the baseline always grey-blue, treatments from the palette in order."""
    colours, treatments = {}, 0
    for name in arm_names:
        if name == "baseline":
            colours[name] = BASELINE_COLOUR
        else:
            colours[name] = PALETTE[treatments % len(PALETTE)]
            treatments += 1
    return colours


def base_layout(**overrides) -> dict:
    layout = {
        "height": 320,
        "margin": {"l": 60, "r": 16, "t": 40, "b": 44},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12, "color": "#1c2430"},
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "hovermode": "x unified",
        "xaxis": {"gridcolor": GRID, "zeroline": False},
        "yaxis": {"gridcolor": GRID, "zeroline": False},
    }
    layout.update(overrides)
    return layout


def _translucent(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def band_figure(bands: Mapping[str, Band], colours: Mapping[str, str], *, y_title: str) -> dict:
    """Mean line per arm over a min–max band across seeds (the band only where there are 2+ seeds)."""
    data: list[dict] = []
    for arm, band in bands.items():
        steps = band.steps.tolist()
        colour = colours[arm]
        if band.seeds > 1:
            data.append({"type": "scatter", "x": steps, "y": band.high.tolist(), "mode": "lines", "line": {"width": 0},
                         "legendgroup": arm, "showlegend": False, "hoverinfo": "skip"})
            data.append({"type": "scatter", "x": steps, "y": band.low.tolist(), "mode": "lines", "line": {"width": 0},
                         "fill": "tonexty", "fillcolor": _translucent(colour, 0.16), "legendgroup": arm,
                         "showlegend": False, "hoverinfo": "skip"})
        data.append({"type": "scatter", "x": steps, "y": band.mean.tolist(), "mode": "lines",
                     "name": f"{arm} (n={band.seeds})", "legendgroup": arm, "line": {"color": colour, "width": 2}})
    layout = base_layout(xaxis={"title": {"text": "step"}, "gridcolor": GRID, "zeroline": False},
                     yaxis={"title": {"text": y_title}, "gridcolor": GRID, "zeroline": False})
    return {"data": data, "layout": layout}


def final_loss_figure(arms: Sequence[ArmResult], colours: Mapping[str, str]) -> dict:
    """Left: final validation loss per arm (mean as a dash, min–max whiskers, a dot per seed). Right: each arm's
    difference to the baseline in % with its 95% confidence interval; left of zero is better."""
    measured = [arm for arm in arms if arm.stats]
    names = [arm.name for arm in measured]
    data: list[dict] = [
        {"type": "scatter", "mode": "markers", "x": names, "y": [arm.stats.mean for arm in measured],
         "name": "mean over seeds", "showlegend": False,
         "marker": {"color": [colours[n] for n in names], "size": 14, "symbol": "line-ew-open",
                    "line": {"width": 3, "color": [colours[n] for n in names]}},
         "error_y": {"type": "data", "symmetric": False, "color": "#8a94a3", "thickness": 1.2, "width": 8,
                     "array": [arm.stats.max - arm.stats.mean for arm in measured],
                     "arrayminus": [arm.stats.mean - arm.stats.min for arm in measured]},
         "hovertemplate": "%{x}: %{y:.4f}<extra>mean, min–max</extra>"},
        {"type": "scatter", "mode": "markers", "showlegend": False,
         "marker": {"color": [colours[arm.name] for arm in measured for _ in arm.values], "size": 7, "opacity": 0.8},
         "x": [arm.name for arm in measured for _ in arm.values],
         "y": [value for arm in measured for value in arm.values.values()],
         "text": [f"seed {seed}" for arm in measured for seed in arm.values],
         "hovertemplate": "%{x} %{text}: %{y:.4f}<extra></extra>"},
    ]
    compared = [arm for arm in measured if arm.vs_baseline is not None]
    data.append({
        "type": "scatter", "mode": "markers", "xaxis": "x2", "yaxis": "y2", "showlegend": False,
        "y": [arm.name for arm in compared], "x": [arm.vs_baseline.relative for arm in compared],
        "marker": {"size": 10, "color": [colours[arm.name] for arm in compared]},
        "error_x": {"type": "data", "color": "#1c2430", "thickness": 1.5,
                    "array": [arm.vs_baseline.relative_half_width or 0 for arm in compared]},
        "hovertemplate": "%{y}: %{x:.2f}% vs baseline<extra>95% CI</extra>",
    })
    layout = base_layout(
        hovermode="closest",
        xaxis={"domain": [0, 0.46], "gridcolor": GRID, "type": "category"},
        yaxis={"title": {"text": "final val loss"}, "gridcolor": GRID, "zeroline": False},
        xaxis2={"domain": [0.58, 1], "anchor": "y2", "gridcolor": GRID, "zeroline": True, "zerolinecolor": "#8a94a3",
                "zerolinewidth": 2, "rangemode": "tozero", "title": {"text": "Δ val loss vs baseline (%), 95% CI"}},
        yaxis2={"anchor": "x2", "type": "category", "gridcolor": GRID, "automargin": True},
    )
    return {"data": data, "layout": layout}


def per_arm_bars(values: Mapping[str, Sequence[float]], colours: Mapping[str, str], *, y_title: str) -> dict:
    """Mean across seeds per arm with min–max whiskers (e.g. tokens/s, peak memory)."""
    names = [name for name, seeds in values.items() if seeds]
    means = [sum(values[name]) / len(values[name]) for name in names]
    figure = {
        "type": "bar", "x": names, "y": means, "showlegend": False,
        "marker": {"color": [_translucent(colours[n], 0.75) for n in names]},
        "error_y": {"type": "data", "symmetric": False, "color": "#1c2430", "thickness": 1.2,
                    "array": [max(values[n]) - m for n, m in zip(names, means)],
                    "arrayminus": [m - min(values[n]) for n, m in zip(names, means)]},
        "hovertemplate": "%{x}: %{y:.4~s}<extra>mean over seeds</extra>",
    }
    layout = base_layout(hovermode="closest", xaxis={"type": "category", "gridcolor": GRID},
                     yaxis={"title": {"text": y_title}, "gridcolor": GRID, "rangemode": "tozero"})
    return {"data": [figure], "layout": layout}


@dataclass(frozen=True)
class Chart:
    name: str  # page-unique id
    title: str
    figure: dict | None  # None: nothing to draw, `empty` says why
    empty: str = "Nothing logged yet."


# Metrics that exist only while a part of the model is on: config section (``modelzoo.config_effects``).
FEATURE_METRICS = {"fp4_error": "fp4", "fp4_activation_error": "fp4", "fp4_weight_error": "fp4", "moe_imbalance": "moe"}


def empty_reason(metric: str, configs: Sequence[Mapping]) -> str:
    """Why a chart of ``metric`` over runs with these flat configs has nothing: the feature is off in every one
    of them (said with the config's own words), or nothing is logged yet."""
    section = FEATURE_METRICS.get(metric)
    reasons = {inactive_sections(config).get(section, "") for config in configs} if section else {""}
    return reasons.pop() if len(reasons) == 1 and "" not in reasons else "Nothing logged yet."


def study_charts(study: Study, arms: Sequence[ArmResult], *, smoothing: float = 0.0) -> list[Chart]:
    """Every chart of the study page. ``study`` has arms and runs prefetched; ``arms`` are its results."""
    arm_rows = list(study.arms.all())
    colours = arm_colours([arm.name for arm in arm_rows])
    charts = []
    runs = {run.pk: run for arm in arm_rows for run in arm.runs.all()}.values()
    corpus_names = per_corpus_metrics(selectors.metric_names([run.pk for run in runs], PER_CORPUS_PREFIX))
    corpus_curves = [CurveMetric(name, f"Validation loss on {name.removeprefix(PER_CORPUS_PREFIX)}", "loss", False)
                     for name in corpus_names]
    metrics = (*CURVES[:2], *corpus_curves, *CURVES[2:])
    all_arrays = series.chart_arrays(runs, [metric.name for metric in metrics],
                                     smoothing={metric.name: smoothing for metric in metrics if metric.smoothable})
    for metric in metrics:
        arrays = all_arrays[metric.name]  # already smoothed per run, so the bands take them as they are
        bands = {}
        for arm in arm_rows:
            band = curves.band([arrays[run.pk] for run in arm.runs.all() if run.pk in arrays])
            if band is not None:
                bands[arm.name] = band
        figure = band_figure(bands, colours, y_title=metric.axis) if bands else None
        if figure is None and metric.name == "fp4_error" and not _fp4_enabled_anywhere(arm_rows):
            charts.append(Chart(metric.name, metric.title, None, empty=FP4_OFF))
            continue
        # The name is also an HTML id, where "/" would need escaping in selectors.
        charts.append(Chart(metric.name.replace("/", "-"), metric.title, figure))
    final = final_loss_figure(arms, colours) if any(arm.stats for arm in arms) else None
    charts.insert(2 + len(corpus_curves), Chart("final_val_loss", "Final validation loss and difference to baseline", final))
    aggregates = series.chart_aggregates(runs, {name: how for name, _, _, how in BARS})
    for name, title, axis, _ in BARS:
        per_run = aggregates[name]
        values = {arm.name: [per_run[run.pk] for run in arm.runs.all() if run.pk in per_run] for arm in arm_rows}
        charts.append(Chart(name, title, per_arm_bars(values, colours, y_title=axis) if per_run else None))
    return charts


FP4_OFF = "FP4 is off in every run of this study (fp4.enabled = false): there is no quantisation error to show."


def _fp4_enabled_anywhere(arm_rows) -> bool:
    return any(((run.config or {}).get("model", {}).get("fp4", {}).get("enabled")) for arm in arm_rows
               for run in arm.runs.all())


# Finished studies do not change, and reading a large one's points is the page's main cost.
CACHE_SECONDS = 24 * 3600


def cached_study_charts(study: Study, arms: Sequence[ArmResult], *, smoothing: float = 0.0) -> list[Chart]:
    """:func:`study_charts`, cached while no run is live. The key covers every run's id, status and step
    (a resumed run changes it) and the study's creation time (ids are reused by fresh test databases)."""
    runs = sorted({run for arm in study.arms.all() for run in arm.runs.all()}, key=lambda run: run.pk)
    if any(run.status in (*LIVE_STATES, RunStatus.PREEMPTED) for run in runs):
        return study_charts(study, arms, smoothing=smoothing)
    fingerprint = hashlib.sha256(repr(
        (study.pk, study.created_at.isoformat(), smoothing, [(run.pk, run.status, run.step) for run in runs])
    ).encode()).hexdigest()[:32]
    key = f"experiments:study-charts:{fingerprint}"
    try:
        charts = cache.get(key)
    except RedisError:
        # The cache lives in Redis: while it is down the page draws its charts uncached instead of failing.
        return study_charts(study, arms, smoothing=smoothing)
    if charts is None:
        charts = study_charts(study, arms, smoothing=smoothing)
        with contextlib.suppress(RedisError):  # Redis went away since the get
            cache.set(key, charts, CACHE_SECONDS)
    return charts
