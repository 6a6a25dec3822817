"""Reads from the compute domain. Page selectors aggregate in SQL with a fixed number of queries, however
many areas, ideas or usage entries there are (the overview is pinned by a test and a benchmark).

Selectors that list areas, ideas, requests or grants take the ``user`` they show them to and leave out what
``compute.visibility`` hides (restricted areas); ``user=None`` means no such filter (services, jobs, tests).
Org-level figures (pool budgets, utilisation, the org burn-down) are totals over all areas, naming none."""
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from compute.cycles import Calendar, Phase
from compute.figures import CycleFigures, Figures, cycle_figures, hours
from compute.forecast import COLUMNS as FORECAST_COLUMNS, forecast_rows
from compute.models import ZERO, Allocation, Cycle, LaunchHold, Pool, Request, UsageEntry
from compute.visibility import compute_q, visible_compute_areas
from core.selectors import get_or_404
from core.types import User
from ideas.lifecycle import Status
from ideas.models import Area, Idea

def _sum(queryset: QuerySet, column: str = "gpu_hours") -> Decimal:
    return queryset.aggregate(total=Sum(column))["total"] or ZERO


# --- single grants ----------------------------------------------------------------------------------------


def allocation_label(allocation: Allocation) -> str:
    target = {
        Allocation.Level.ORG: "the org budget",
        Allocation.Level.AREA: f"the {allocation.area.name if allocation.area_id else ''} area grant",
        Allocation.Level.IDEA: f"the {allocation.idea.key if allocation.idea_id else ''} grant",
    }[allocation.level]
    return f"{target} on {allocation.pool.name}"


def grant_hours(cycle: Cycle, pool: Pool, *, area: Area, idea: Idea | None) -> Decimal:
    """The hours of an area's (``idea`` None) or an idea's grant, 0 when it has none."""
    level = Allocation.Level.IDEA if idea is not None else Allocation.Level.AREA
    grant = Allocation.objects.filter(cycle=cycle, pool=pool, level=level, area=area, idea=idea).values_list("gpu_hours", flat=True).first()
    return ZERO if grant is None else grant


def allocation_children_total(allocation: Allocation) -> Decimal:
    return _sum(Allocation.objects.filter(parent=allocation))


def allocation_unassigned(allocation: Allocation) -> Decimal:
    """Hours a grant can still hand to children: its amount less what its children already hold."""
    return allocation.gpu_hours - allocation_children_total(allocation)


def allocation_launchable(allocation: Allocation) -> Decimal:
    """Hours launches may still reserve on this grant: amount − children's grants − usage charged to it −
    holds of launches still running. Can be negative after overrides."""
    used = _sum(UsageEntry.objects.filter(allocation=allocation))
    held = _sum(LaunchHold.objects.filter(allocation=allocation, released_at__isnull=True), "outstanding_hours")
    return hours(allocation_unassigned(allocation) - used - held)


def who_can_grant_more(allocation: Allocation) -> list[str]:
    """Usernames to ask for more: the area's PIC (for an idea grant), then the reviewers."""
    names = []
    if allocation.level == Allocation.Level.IDEA:
        names.append(allocation.area.pic.get_username())
    return names + [name for name in reviewer_names() if name not in names]


def reviewer_names() -> list[str]:
    """Usernames of the active compute reviewers, sorted."""
    reviewers = get_user_model().objects.filter(
        groups__name=settings.FLIGHTDECK_COMPUTE_REVIEWER_GROUP, is_active=True
    ).order_by("username")
    return [user.get_username() for user in reviewers]


# --- cycles -----------------------------------------------------------------------------------------------


def cycle_list() -> QuerySet:
    return Cycle.objects.order_by("-start")


def cycle_current(now: datetime | None = None) -> Cycle | None:
    now = now or timezone.now()
    return Cycle.objects.filter(start__lte=now, end__gt=now).first() or Cycle.objects.order_by("-start").first()


def cycle_get(cycle_id: int) -> Cycle:
    return get_or_404(Cycle.objects.all(), f"no cycle {cycle_id}", pk=cycle_id)


def cycle_before(cycle: Cycle) -> Cycle | None:
    return Cycle.objects.filter(start__lt=cycle.start).order_by("-start").first()


def cycle_open_for_requests() -> Cycle | None:
    return Cycle.objects.filter(phase=Phase.OPEN).order_by("start").first()


# --- tables (every table on the pages is one of these, so CSV export is the same data) -----------------


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)

    def header(self) -> list[tuple[str, bool]]:
        """(column, holds numbers) pairs, so the page can right-align numeric columns' headers too."""
        first = self.rows[0] if self.rows else [None] * len(self.columns)
        return [(name, isinstance(cell, Decimal | int) and not isinstance(cell, bool)) for name, cell in zip(self.columns, first, strict=True)]


def _elapsed_hours(cycle: Cycle, now: datetime) -> Decimal:
    end = min(max(now, cycle.start), cycle.end)
    return Decimal(int((end - cycle.start).total_seconds())) / Decimal(3600)


@dataclass
class CycleOverview:
    cycle: Cycle
    cycles: list[Cycle]
    areas: Table
    pools: Table
    burn_days: list[date]
    burn_remaining: list[Decimal | None]
    burn_ideal: list[Decimal]
    budget: Decimal
    granted: Decimal
    used: Decimal
    forecast: Table

    @property
    def overrunning(self) -> list[list]:
        """Forecast rows of areas projected to use more than their grant."""
        return [row for row in self.forecast.rows if row[-1] is not None]


def _areas(user: User | None) -> QuerySet[Area]:
    return Area.objects.all() if user is None else visible_compute_areas(user)


def _rows(user: User | None) -> Q:
    return Q() if user is None else compute_q(user)


def cycle_overview(cycle: Cycle, *, now: datetime | None = None, user: User | None = None) -> CycleOverview:
    """Requested vs granted vs used per area, utilisation per pool and the org budget's daily burn-down."""
    now = now or timezone.now()
    calendar = Calendar.from_settings()
    figures = cycle_figures(cycle)
    areas = Table("areas", "Areas", ["Area", "Requested GPU-h", "Granted GPU-h", "Used GPU-h", "Remaining GPU-h"])
    shown_areas = list(_areas(user).filter(pk__in=figures.area_ids()).order_by("name"))
    for area in shown_areas:
        shown = figures.area(area.pk)
        areas.rows.append([area, shown.requested, shown.granted, shown.used, shown.remaining])
    forecast = Table("forecast", "Forecast to the end of the cycle", FORECAST_COLUMNS, forecast_rows(cycle, figures, shown_areas, now=now))

    budgets = list(Allocation.objects.filter(cycle=cycle, level=Allocation.Level.ORG).select_related("pool").order_by("pool__name"))
    # Usage per pool and per local day in one scan: a filtered sum per day over [midnight, next midnight), with
    # bounds computed here so DST days are 23 or 25 hours long. A segment counts on the day it started (segments
    # are minutes to hours long). Plain comparisons keep this fast on SQLite too, where truncating dates in a
    # time zone runs Python per row.
    days = cycle.window.days()
    day_sums = {
        f"d{index}": Sum("gpu_hours", filter=Q(segment_start__gte=start, segment_start__lt=end))
        for index, (start, end) in enumerate(calendar.day_bounds(day) for day in days)
    }
    pool_rows = list(UsageEntry.objects.filter(cycle=cycle).values("pool_id").annotate(**day_sums))
    per_day = {day: sum((row[f"d{index}"] or ZERO for row in pool_rows), ZERO) for index, day in enumerate(days)}
    elapsed = _elapsed_hours(cycle, now)
    pools = Table("pools", "Pools", ["Pool", "GPU type", "GPUs", "Budget GPU-h", "Granted GPU-h", "Used GPU-h", "Utilisation %"])
    for budget in budgets:
        pool, shown = budget.pool, figures.org(budget.pool_id)
        capacity_so_far = pool.gpu_count * elapsed
        utilisation = hours(100 * shown.used / capacity_so_far) if capacity_so_far else ZERO
        pools.rows.append([pool.name, pool.gpu_type, pool.gpu_count, shown.budget, shown.granted, shown.used, utilisation])

    total_budget = sum((b.gpu_hours for b in budgets), ZERO)
    today = timezone.localtime(now, calendar.tz).date()
    remaining, burn, spent = [], total_budget, ZERO
    for day in days:
        spent += per_day.get(day, ZERO)
        remaining.append(hours(burn - spent) if day <= today else None)
    ideal = [hours(total_budget * (len(days) - index - 1) / len(days)) for index in range(len(days))]
    return CycleOverview(
        cycle=cycle,
        cycles=list(cycle_list()),
        areas=areas,
        pools=pools,
        burn_days=days,
        burn_remaining=remaining,
        burn_ideal=ideal,
        budget=total_budget,
        granted=figures.org().granted,
        used=figures.org().used,
        forecast=forecast,
    )


def burn_down_table(overview: CycleOverview) -> Table:
    table = Table("burndown", "Org budget burn-down", ["Day", "Remaining GPU-h", "Even-spend GPU-h"])
    table.rows = [[day, left, ideal] for day, left, ideal in zip(overview.burn_days, overview.burn_remaining, overview.burn_ideal, strict=True)]
    return table


def requests_table(requests: Iterable[Request]) -> Table:
    """The requests (for example the review desk's, filtered and sorted as its URL says) as a table."""
    table = Table("requests", "Requests", ["#", "Target", "Area", "Pool", "Stage", "Requested GPU-h", "Granted GPU-h", "Status", "Requester", "Submitted"])
    for request in requests:
        table.rows.append([
            request.pk, request.target_label, request.area.name, request.pool.name, request.stage,
            request.gpu_hours, request.granted_hours, request.status, request.requester.get_username(),
            timezone.localtime(request.created_at).strftime("%Y-%m-%d %H:%M"),
        ])
    return table


def request_queue_item(request_id: int) -> Request:
    """One request with what its desk row shows."""
    return Request.objects.select_related("area", "idea", "pool", "requester", "review__reviewer", "cycle").get(pk=request_id)


def allocation_figures(allocation: Allocation, figures: CycleFigures) -> Figures:
    """The figures of the org budget, area or idea a grant belongs to, in its pool."""
    if allocation.level == Allocation.Level.ORG:
        return figures.org(allocation.pool_id)
    if allocation.level == Allocation.Level.AREA:
        return figures.area(allocation.area_id, allocation.pool_id)
    return figures.idea(allocation.idea_id, allocation.pool_id)


def allocations_for_cycle(cycle: Cycle, *, user: User | None = None) -> list[dict]:
    """Every grant of the cycle (that ``user`` may see) with what its org, area or idea used in its pool and
    what is left (the API's allocation list); the org budget's remaining is its budget less all usage."""
    figures = cycle_figures(cycle)
    allocations = Allocation.objects.filter(cycle=cycle).select_related("pool", "area", "idea").order_by("pool__name", "level", "id")
    if user is not None:  # hidden grants still count in their parents' totals, as usage does
        allocations = allocations.filter(compute_q(user))
    children = dict(
        Allocation.objects.filter(cycle=cycle, parent__isnull=False).values("parent_id").annotate(total=Sum("gpu_hours")).values_list("parent_id", "total")
    )
    rows = []
    for allocation in allocations:
        shown = allocation_figures(allocation, figures)
        rows.append({
            "allocation": allocation,
            "children_total": children.get(allocation.pk, ZERO),
            "used": shown.used,
            "remaining": shown.budget_left if allocation.level == Allocation.Level.ORG else shown.remaining,
        })
    return rows


def allocations_table(cycle: Cycle, *, user: User | None = None) -> Table:
    table = Table("allocations", "Allocation tree", ["Level", "Target", "Pool", "Granted GPU-h", "Handed to children GPU-h", "Used GPU-h", "Remaining GPU-h"])
    for row in allocations_for_cycle(cycle, user=user):
        allocation = row["allocation"]
        target = {"org": "org", "area": getattr(allocation.area, "name", ""), "idea": getattr(allocation.idea, "key", "")}[allocation.level]
        table.rows.append([allocation.level, target, allocation.pool.name, allocation.gpu_hours, row["children_total"], row["used"], row["remaining"]])
    return table


# --- figures (the API's granted / used / remaining) -------------------------------------------------------

FIGURE_LEVELS = ("org", "pool", "area", "idea")


def figure_rows(cycle: Cycle, *, level: str, user: User | None = None) -> list[dict]:
    """The cycle's figures at one level, all pools together (org, area, idea) or per pool, for the areas and
    ideas ``user`` may see: the numbers the pages and CSVs show, from the same ``compute.figures``."""
    figures = cycle_figures(cycle, ideas=level == "idea")
    if level == "org":
        return [{"target": "org", "figures": figures.org(), "has_budget": True}]
    if level == "pool":
        pools = Pool.objects.in_bulk(figures.pool_ids())
        rows = ({"target": pools[pk].name, "figures": figures.org(pk), "has_budget": True} for pk in pools)
        return sorted(rows, key=lambda row: row["target"])
    if level == "area":
        areas = _areas(user).filter(pk__in=figures.area_ids()).order_by("slug")
        return [{"target": area.slug, "figures": figures.area(area.pk), "has_budget": False} for area in areas]
    ideas = Idea.objects.filter(pk__in=figures.idea_ids()).order_by("number")
    if user is not None:
        ideas = ideas.filter(area__in=_areas(user))
    return [{"target": idea.key, "figures": figures.idea(idea.pk), "has_budget": False} for idea in ideas]


# --- usage ------------------------------------------------------------------------------------------------


def usage_rollup(*, cycle: Cycle, area: Area | None = None, user: User | None = None) -> list[dict]:
    """Usage of a cycle per (area, idea, pool), optionally of one area."""
    entries = UsageEntry.objects.filter(_rows(user), cycle=cycle)
    if area is not None:
        entries = entries.filter(area=area)
    return list(
        entries.values("area__slug", "idea__key", "pool__name")
        .annotate(gpu_hours=Sum("gpu_hours"))
        .order_by("area__slug", "idea__key", "pool__name")
    )


# --- area page --------------------------------------------------------------------------------------------


def area_get(slug: str, *, user: User | None = None) -> Area:
    """The area by slug; 404 when unknown or hidden from ``user`` (not revealing that it exists)."""
    return get_or_404(_areas(user).select_related("pic"), f"no area {slug!r}", slug=slug)


@dataclass
class AreaBudget:
    area: Area
    cycle: Cycle
    grants: Table
    ideas: Table
    requests: list[Request]
    granted: Decimal
    used: Decimal
    unassigned: Decimal
    suggested_request: Decimal


def area_budget(area: Area, cycle: Cycle, *, now: datetime | None = None) -> AreaBudget:
    """An area's grant per pool, its ideas' grants and usage, and a suggested "request more" amount:
    the usage projected to the end of the cycle at the current pace, less the grant."""
    now = now or timezone.now()
    figures = cycle_figures(cycle)
    pools = Pool.objects.in_bulk(figures.area_pools(area.pk))
    ideas_in_area = list(Idea.objects.filter(area=area, pk__in=figures.idea_ids()).order_by("number"))
    handed = defaultdict(lambda: ZERO)
    ideas = Table("ideas", "Ideas", ["Idea", "Title", "Status", "Pool", "Granted GPU-h", "Used GPU-h", "Remaining GPU-h"])
    for idea in ideas_in_area:
        for pool_id in figures.idea_pools(idea.pk):
            shown = figures.idea(idea.pk, pool_id)
            if not shown.has_grant and not shown.used:
                continue  # only requested so far
            handed[pool_id] += shown.granted
            # Without a grant of its own the idea ran on the area's grant: it has no remaining of its own either.
            granted, remaining = (shown.granted, shown.remaining) if shown.has_grant else (None, None)
            ideas.rows.append([idea, idea.title, idea.get_status_display(), pools[pool_id].name, granted, shown.used, remaining])
    grants = Table("grants", "Area grant", ["Pool", "Granted GPU-h", "Handed to ideas GPU-h", "Used GPU-h", "Remaining GPU-h"])
    for pool in sorted(pools.values(), key=lambda pool: pool.name):
        shown = figures.area(area.pk, pool.pk)
        grants.rows.append([pool.name, shown.granted, hours(handed[pool.pk]), shown.used, shown.remaining])
    total = figures.area(area.pk)
    elapsed = _elapsed_hours(cycle, now)
    projected = total.used * cycle.window.hours / elapsed if elapsed else ZERO
    return AreaBudget(
        area=area,
        cycle=cycle,
        grants=grants,
        ideas=ideas,
        requests=list(Request.objects.filter(cycle=cycle, area=area).select_related("idea", "pool", "requester").order_by("-created_at")),
        granted=total.granted,
        used=total.used,
        unassigned=hours(total.granted - sum(handed.values(), ZERO)),
        suggested_request=max(ZERO, hours(projected - total.granted)),
    )


# --- idea panel -------------------------------------------------------------------------------------------


@dataclass
class IdeaBudget:
    cycle: Cycle | None
    total: Figures
    rows: list[dict]


def idea_budget(idea: Idea, *, now: datetime | None = None) -> IdeaBudget:
    """Grant, usage and remaining hours of one idea in the current cycle, in all and per pool."""
    now = now or timezone.now()
    cycle = Cycle.objects.filter(start__lte=now, end__gt=now).first()
    if cycle is None:
        return IdeaBudget(cycle=None, total=Figures.of_nothing(), rows=[])
    figures = cycle_figures(cycle)
    pools = Pool.objects.in_bulk(figures.idea_pools(idea.pk))
    rows = [{"pool": pools[pool_id].name, "figures": figures.idea(idea.pk, pool_id)} for pool_id in figures.idea_pools(idea.pk)]
    return IdeaBudget(cycle=cycle, total=figures.idea(idea.pk), rows=sorted(rows, key=lambda row: row["pool"]))


# --- trends -----------------------------------------------------------------------------------------------


@dataclass
class Trends:
    cycles: list[Cycle]
    per_area: Table
    landed: Table


def trends(*, last: int = 12, now: datetime | None = None, user: User | None = None) -> Trends:
    """GPU-hours per area per cycle for the last ``last`` cycles that have started, and the total cost of each
    landed idea."""
    cycles = list(Cycle.objects.filter(start__lte=now or timezone.now()).order_by("-start")[:last])[::-1]
    usage = defaultdict(lambda: ZERO)
    for row in UsageEntry.objects.filter(cycle__in=cycles).values("cycle_id", "area_id").annotate(total=Sum("gpu_hours")):
        usage[(row["area_id"], row["cycle_id"])] = row["total"]
    areas = _areas(user).filter(pk__in={area_id for area_id, _ in usage}).order_by("name")
    per_area = Table("per_area", "GPU-hours per area per cycle", ["Area", *[str(c.first_day) for c in cycles]])
    for area in areas:
        per_area.rows.append([area, *[hours(usage[(area.pk, c.pk)]) for c in cycles]])
    landed = Table("landed", "Cost of landed ideas", ["Idea", "Title", "Area", "Cycles with usage", "Used GPU-h", "Granted GPU-h"])
    used = {
        row["idea_id"]: row
        for row in UsageEntry.objects.filter(idea__status=Status.LANDED)
        .values("idea_id").annotate(total=Sum("gpu_hours"), cycles=Count("cycle_id", distinct=True))
    }
    granted = dict(
        Allocation.objects.filter(level=Allocation.Level.IDEA, idea__status=Status.LANDED)
        .values("idea_id").annotate(total=Sum("gpu_hours")).values_list("idea_id", "total")
    )
    ideas = Idea.objects.filter(area__in=_areas(user)) if user is not None else Idea.objects.all()
    for idea in ideas.filter(pk__in=set(used) | set(granted)).select_related("area").order_by("number"):
        row = used.get(idea.pk, {"total": ZERO, "cycles": 0})
        landed.rows.append([idea, idea.title, idea.area.name, row["cycles"], hours(row["total"]), granted.get(idea.pk, ZERO)])
    return Trends(cycles=cycles, per_area=per_area, landed=landed)

