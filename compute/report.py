"""The cycle report a review meeting opens first: granted vs used per area, what was refused and why, the
ideas that landed during the cycle and the GPU-hours each cost. Final once the cycle is closed; before that
the page says the figures are still moving.

Every table is a ``selectors.Table`` (so it downloads as CSV) and every figure comes from ``compute.figures``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Sum
from django.utils import timezone

from compute.cycles import Phase
from compute.figures import cycle_figures, hours
from compute.models import ZERO, Cycle, Request, UsageEntry
from compute.selectors import Table
from compute.visibility import compute_q, visible_compute_areas
from core.types import User
from ideas.lifecycle import Status
from ideas.models import Area, Decision

TABLES = ("granted_used", "refused", "landed")


@dataclass
class CycleReport:
    cycle: Cycle
    final: bool
    granted_used: Table
    refused: Table
    landed: Table


def _percent(part, whole) -> object:
    return hours(100 * part / whole) if whole else None


def cycle_report(cycle: Cycle, *, user: User | None) -> CycleReport:
    figures = cycle_figures(cycle)
    refused_requests = Request.objects.filter(cycle=cycle, status=Request.Status.REFUSED).select_related(
        "area", "idea", "pool", "review__reviewer"
    ).order_by("-gpu_hours", "pk")
    if user is not None:
        refused_requests = refused_requests.filter(compute_q(user))
    refused_by_area = defaultdict(lambda: ZERO)
    refused = Table("refused", "Refused requests", ["#", "Target", "Area", "Pool", "Stage", "Requested GPU-h", "Reviewer", "Reason"])
    for request in refused_requests:
        refused_by_area[request.area_id] += request.gpu_hours
        review = getattr(request, "review", None)
        refused.rows.append([request.pk, request.target_label, request.area, request.pool.name, request.stage, request.gpu_hours,
                             review.reviewer.get_username() if review else None, review.comment if review else None])

    areas = visible_compute_areas(user) if user is not None else Area.objects.all()
    granted_used = Table("granted_used", "Granted and used per area",
                         ["Area", "Requested GPU-h", "Granted GPU-h", "Used GPU-h", "Used % of grant", "Remaining GPU-h", "Refused GPU-h"])
    for area in areas.filter(pk__in=figures.area_ids()).order_by("name"):
        shown = figures.area(area.pk)
        granted_used.rows.append([area, shown.requested, shown.granted, shown.used, _percent(shown.used, shown.granted),
                                  shown.remaining, hours(refused_by_area[area.pk])])

    decisions = list(
        Decision.objects.filter(outcome=Status.LANDED, created_at__gte=cycle.start, created_at__lt=cycle.end, idea__area__in=areas)
        .select_related("idea__area").order_by("created_at")
    )
    spent = {
        row["idea_id"]: row
        for row in UsageEntry.objects.filter(idea__in=[d.idea_id for d in decisions]).values("idea_id")
        .annotate(total=Sum("gpu_hours"), cycles=Count("cycle_id", distinct=True))
    }
    landed = Table("landed", "Ideas landed in this cycle",
                   ["Idea", "Title", "Area", "Landed on", "GPU-h this cycle", "GPU-h in all", "Cycles with usage"])
    for decision in decisions:
        idea, total = decision.idea, spent.get(decision.idea_id, {"total": ZERO, "cycles": 0})
        landed.rows.append([idea, idea.title, idea.area, timezone.localtime(decision.created_at).date().isoformat(),
                            figures.idea(idea.pk).used, hours(total["total"]), total["cycles"]])
    return CycleReport(cycle=cycle, final=cycle.phase == Phase.CLOSED, granted_used=granted_used, refused=refused, landed=landed)
