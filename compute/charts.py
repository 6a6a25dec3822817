"""Plotly figures for the compute pages, built server-side as plain figure dicts (``data`` + ``layout``, the
format plotly.js takes) and embedded with ``json_script``; templates/compute/_chart.html draws them with the
locally served plotly.js. Plain dicts rather than ``plotly.graph_objects``: the page is rendered on every
request, and validating graph objects cost more than all of the page's SQL (see docs/benchmarks.md)."""
from decimal import Decimal

from compute.selectors import CycleOverview, Trends

REQUESTED, GRANTED, USED, IDEAL, TARGET = "#9aa5b8", "#3a4fd8", "#1f7a4d", "#c9ced8", "#9a6200"
PALETTE = ["#3a4fd8", "#1f7a4d", "#c2362f", "#9a6200", "#6136c2", "#1f5bb8", "#8a5a00", "#445062", "#b03029", "#0f766e"]
GRID = "#e3e6eb"


def _axis(title: str = "", **extra) -> dict:
    axis = {"gridcolor": GRID, "zerolinecolor": "#cfd4dc", "automargin": True}
    if title:
        axis["title"] = {"text": title}
    axis.update(extra)
    return axis


def _layout(*, y_title: str, height: int = 320, **extra) -> dict:
    layout = {
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 12, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12, "color": "#1c2430"},
        "legend": {"orientation": "h", "y": 1.12, "x": 0},
        "xaxis": _axis(),
        "yaxis": _axis(y_title),
    }
    layout.update(extra)
    return layout


def _floats(values) -> list[float | None]:
    return [None if value is None else float(value) for value in values]


def _bar(name: str, x: list, y: list, color: str, **extra) -> dict:
    return {"type": "bar", "name": name, "x": x, "y": _floats(y), "marker": {"color": color}, **extra}


def _line(name: str, x: list, y: list, color: str, **extra) -> dict:
    return {"type": "scatter", "mode": "lines+markers", "name": name, "x": x, "y": _floats(y), "line": {"color": color}, **extra}


def areas_requested_granted_used(overview: CycleOverview) -> dict:
    rows = overview.areas.rows
    names = [row[0].name for row in rows]
    return {
        "data": [
            _bar("Requested", names, [r[1] for r in rows], REQUESTED),
            _bar("Granted", names, [r[2] for r in rows], GRANTED),
            _bar("Used", names, [r[3] for r in rows], USED),
        ],
        "layout": _layout(y_title="GPU-hours", barmode="group"),
    }


def org_burn_down(overview: CycleOverview) -> dict:
    days = [day.isoformat() for day in overview.burn_days]
    return {
        "data": [
            _line("Even spend", days, overview.burn_ideal, IDEAL, mode="lines", line={"color": IDEAL, "dash": "dash"}),
            _line("Remaining", days, overview.burn_remaining, GRANTED),
        ],
        "layout": _layout(y_title="GPU-hours left", yaxis=_axis("GPU-hours left", rangemode="tozero")),
    }


def pool_utilisation(overview: CycleOverview, target: Decimal) -> dict:
    rows = overview.pools.rows
    line = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": float(target) * 100, "y1": float(target) * 100,
            "line": {"color": TARGET, "dash": "dot"}}
    return {
        "data": [_bar("Utilisation", [r[0] for r in rows], [r[6] for r in rows], USED, showlegend=False)],
        "layout": _layout(y_title="% of capacity so far", yaxis=_axis("% of capacity so far", range=[0, 100]), shapes=[line]),
    }


def area_trends(trends: Trends) -> dict:
    cycles = trends.per_area.columns[1:]
    return {
        "data": [_line(row[0].name, cycles, row[1:], PALETTE[index % len(PALETTE)]) for index, row in enumerate(trends.per_area.rows)],
        "layout": _layout(y_title="GPU-hours used", height=360, xaxis=_axis("Cycle start", type="category")),
    }


def landed_idea_cost(trends: Trends) -> dict:
    rows = trends.landed.rows
    return {
        "data": [_bar("Used", [row[0].key for row in rows], [row[4] for row in rows], GRANTED, hovertext=[row[1] for row in rows])],
        "layout": _layout(y_title="GPU-hours used, all cycles"),
    }
