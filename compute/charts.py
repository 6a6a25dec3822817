"""Plotly figures for the compute pages, built server-side and handed to the page as plain JSON dicts
(rendered by the locally served plotly.js; see templates/compute/_chart.html)."""
import json
from decimal import Decimal

import plotly.graph_objects as go

from compute.selectors import CycleOverview, Trends

REQUESTED, GRANTED, USED, IDEAL = "#9aa5b8", "#3a4fd8", "#1f7a4d", "#c9ced8"
PALETTE = ["#3a4fd8", "#1f7a4d", "#c2362f", "#9a6200", "#6136c2", "#1f5bb8", "#8a5a00", "#445062", "#b03029", "#0f766e"]


def _layout(**overrides) -> dict:
    layout = {
        "height": 320,
        "margin": {"l": 56, "r": 16, "t": 12, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12, "color": "#1c2430"},
        "legend": {"orientation": "h", "y": 1.12, "x": 0},
        "yaxis": {"gridcolor": "#e3e6eb", "zerolinecolor": "#cfd4dc"},
        "xaxis": {"gridcolor": "#e3e6eb"},
    }
    layout.update(overrides)
    return layout


def _plain(figure: go.Figure) -> dict:
    """The figure as JSON-safe builtins, so Django's json_script can embed (and escape) it."""
    return json.loads(figure.to_json())


def _floats(values) -> list[float | None]:
    return [None if value is None else float(value) for value in values]


def areas_requested_granted_used(overview: CycleOverview) -> dict:
    names = [row[0].name for row in overview.areas.rows]
    figure = go.Figure(
        data=[
            go.Bar(name="Requested", x=names, y=_floats(r[1] for r in overview.areas.rows), marker_color=REQUESTED),
            go.Bar(name="Granted", x=names, y=_floats(r[2] for r in overview.areas.rows), marker_color=GRANTED),
            go.Bar(name="Used", x=names, y=_floats(r[3] for r in overview.areas.rows), marker_color=USED),
        ],
        layout=_layout(barmode="group", yaxis={"title": {"text": "GPU-hours"}, "gridcolor": "#e3e6eb"}),
    )
    return _plain(figure)


def org_burn_down(overview: CycleOverview) -> dict:
    days = [day.isoformat() for day in overview.burn_days]
    figure = go.Figure(
        data=[
            go.Scatter(name="Even spend", x=days, y=_floats(overview.burn_ideal), mode="lines", line={"color": IDEAL, "dash": "dash"}),
            go.Scatter(name="Remaining", x=days, y=_floats(overview.burn_remaining), mode="lines+markers", line={"color": GRANTED}),
        ],
        layout=_layout(yaxis={"title": {"text": "GPU-hours left"}, "gridcolor": "#e3e6eb", "rangemode": "tozero"}),
    )
    return _plain(figure)


def pool_utilisation(overview: CycleOverview, target: Decimal) -> dict:
    names = [row[0] for row in overview.pools.rows]
    figure = go.Figure(
        data=[go.Bar(name="Utilisation", x=names, y=_floats(r[6] for r in overview.pools.rows), marker_color=USED, showlegend=False)],
        layout=_layout(
            yaxis={"title": {"text": "% of capacity so far"}, "range": [0, 100], "gridcolor": "#e3e6eb"},
            shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": float(target) * 100, "y1": float(target) * 100,
                     "line": {"color": "#9a6200", "dash": "dot"}}],
        ),
    )
    return _plain(figure)


def area_trends(trends: Trends) -> dict:
    cycles = trends.per_area.columns[1:]
    figure = go.Figure(
        data=[
            go.Scatter(name=row[0].name, x=cycles, y=_floats(row[1:]), mode="lines+markers", line={"color": PALETTE[index % len(PALETTE)]})
            for index, row in enumerate(trends.per_area.rows)
        ],
        layout=_layout(height=360, xaxis={"title": {"text": "Cycle start"}, "type": "category"}, yaxis={"title": {"text": "GPU-hours used"}, "gridcolor": "#e3e6eb"}),
    )
    return _plain(figure)


def landed_idea_cost(trends: Trends) -> dict:
    figure = go.Figure(
        data=[go.Bar(x=[row[0].key for row in trends.landed.rows], y=_floats(row[4] for row in trends.landed.rows), marker_color=GRANTED,
                     hovertext=[row[1] for row in trends.landed.rows])],
        layout=_layout(yaxis={"title": {"text": "GPU-hours used, all cycles"}, "gridcolor": "#e3e6eb"}),
    )
    return _plain(figure)
