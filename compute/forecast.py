"""End-of-cycle usage per area: what it used so far, plus the larger of two views of what is still to come —
the recent burn rate carried to the cycle's end, and the remaining estimates of its queued and running
studies (the unreleased part of their launch holds, which charges draw down). Taking the larger keeps a
running study from being counted twice while still flagging an area that launched more than its pace says.
An area whose projection exceeds its grant is flagged with the overrun.

Two queries on top of the cycle's figures, however many areas or entries.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Sum

from compute.figures import CycleFigures, hours
from compute.models import ZERO, Cycle, LaunchHold, UsageEntry
from ideas.models import Area

BURN_WINDOW = timedelta(days=3)
COLUMNS = ["Area", "Granted GPU-h", "Used GPU-h", "Burn GPU-h/day", "Queued and running GPU-h", "Projected GPU-h", "Overrun GPU-h"]


def _hours_between(start: datetime, end: datetime) -> Decimal:
    return Decimal(max(0, int((end - start).total_seconds()))) / Decimal(3600)


def forecast_rows(cycle: Cycle, figures: CycleFigures, areas: list[Area], *, now: datetime) -> list[list]:
    """One row per area in ``areas`` (the table's columns are ``COLUMNS``); overrun is None when within grant."""
    clock = min(max(now, cycle.start), cycle.end)
    window_start = max(cycle.start, clock - BURN_WINDOW)
    window_hours = _hours_between(window_start, clock)
    hours_left = _hours_between(clock, cycle.end)
    recent = dict(
        UsageEntry.objects.filter(cycle=cycle, segment_start__gte=window_start, segment_start__lt=clock)
        .values("area_id").annotate(total=Sum("gpu_hours")).values_list("area_id", "total")
    )
    held = dict(
        LaunchHold.objects.filter(allocation__cycle=cycle, released_at__isnull=True)
        .values("allocation__area_id").annotate(total=Sum("outstanding_hours")).values_list("allocation__area_id", "total")
    )
    rows = []
    for area in areas:
        shown = figures.area(area.pk)
        rate = recent.get(area.pk, ZERO) / window_hours if window_hours else ZERO
        to_come = max(rate * hours_left, held.get(area.pk, ZERO))
        projected = hours(shown.used + to_come)
        overrun = projected - shown.granted
        rows.append([area, shown.granted, shown.used, hours(rate * 24), hours(held.get(area.pk, ZERO)), projected,
                     overrun if overrun > 0 else None])
    return rows
