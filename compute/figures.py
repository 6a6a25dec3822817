"""The one source of a cycle's granted / used / remaining / requested figures, for the org, a pool, an area
or an idea. Every page, CSV and API answer that shows these numbers reads them here, so they agree.

Three queries per cycle, however many areas, ideas or usage entries: grants grouped by (level, pool, area,
idea), usage grouped by (pool, area, idea) and requests grouped by (status, pool, area, idea). Sums are kept
exact (usage has four decimal places) and rounded to cents only when read, each figure from its own exact
sum, so an area's used hours are the rounded sum of its entries, never a sum of rounded parts.

Definitions (the same on every page):
- org / pool: ``budget`` is the org budget; ``granted`` what areas were granted out of it; ``unallocated``
  = budget − granted; ``used`` all usage in the pool; ``budget_left`` = budget − used.
- area: ``granted`` its area grants; ``used`` every entry charged to the area (its ideas' included).
- idea: ``granted`` its idea grants; ``used`` every entry of the idea, whichever grant it ran under (an idea
  without a grant of its own runs on its area's).
- ``has_grant``: whether a grant row exists (an idea without one runs on its area's grant and has no
  remaining of its own: pages show "—", not a negative number);
- ``remaining`` = granted − used (negative when overdrawn); ``requested`` every request's hours, whatever its
  status; ``open_requested`` what is still waiting for a decision.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum

from compute.models import ZERO, Allocation, Cycle, Request, UsageEntry

CENT = Decimal("0.01")


def hours(value: Decimal | int | None) -> Decimal:
    """GPU-hours rounded to cents, never negative zero (``-0.004`` reads ``0.00``, not ``-0.00``)."""
    return Decimal(value or 0).quantize(CENT) + ZERO


@dataclass
class _Sums:
    budget: Decimal = ZERO
    granted: Decimal = ZERO
    used: Decimal = ZERO
    requested: Decimal = ZERO
    open_requested: Decimal = ZERO
    grants: int = 0

    def add(self, other: _Sums) -> None:
        self.budget += other.budget
        self.granted += other.granted
        self.used += other.used
        self.requested += other.requested
        self.open_requested += other.open_requested
        self.grants += other.grants


@dataclass(frozen=True)
class Figures:
    """Rounded figures of one org, pool, area or idea (see the module docstring for what each means)."""

    budget: Decimal
    granted: Decimal
    used: Decimal
    remaining: Decimal
    unallocated: Decimal
    budget_left: Decimal
    requested: Decimal
    open_requested: Decimal
    has_grant: bool

    @classmethod
    def of(cls, sums: _Sums) -> Figures:
        return cls(
            budget=hours(sums.budget), granted=hours(sums.granted), used=hours(sums.used),
            remaining=hours(sums.granted - sums.used), unallocated=hours(sums.budget - sums.granted), budget_left=hours(sums.budget - sums.used),
            requested=hours(sums.requested), open_requested=hours(sums.open_requested),
            has_grant=sums.grants > 0,
        )

    @classmethod
    def of_nothing(cls) -> Figures:
        return cls.of(_Sums())




@dataclass
class CycleFigures:
    """A cycle's figures keyed by pool id (``None``: all pools together)."""

    cycle: Cycle
    _org: dict[int | None, _Sums] = field(default_factory=lambda: defaultdict(_Sums))
    _area: dict[tuple[int, int | None], _Sums] = field(default_factory=lambda: defaultdict(_Sums))
    _idea: dict[tuple[int, int | None], _Sums] = field(default_factory=lambda: defaultdict(_Sums))

    def org(self, pool_id: int | None = None) -> Figures:
        return Figures.of(self._org[pool_id]) if pool_id in self._org else Figures.of_nothing()

    def area(self, area_id: int, pool_id: int | None = None) -> Figures:
        key = (area_id, pool_id)
        return Figures.of(self._area[key]) if key in self._area else Figures.of_nothing()

    def idea(self, idea_id: int, pool_id: int | None = None) -> Figures:
        key = (idea_id, pool_id)
        return Figures.of(self._idea[key]) if key in self._idea else Figures.of_nothing()

    def pool_ids(self) -> list[int]:
        return sorted(pool_id for pool_id in self._org if pool_id is not None)

    def area_ids(self) -> set[int]:
        return {area_id for area_id, pool_id in self._area if pool_id is None}

    def idea_ids(self) -> set[int]:
        return {idea_id for idea_id, pool_id in self._idea if pool_id is None}

    def idea_pools(self, idea_id: int) -> list[int]:
        return sorted(pool_id for key_idea, pool_id in self._idea if key_idea == idea_id and pool_id is not None)

    def area_pools(self, area_id: int) -> list[int]:
        return sorted(pool_id for key_area, pool_id in self._area if key_area == area_id and pool_id is not None)

    def _count(self, pool_id: int, area_id: int | None, idea_id: int | None, sums: _Sums) -> None:
        for key in (pool_id, None):
            self._org[key].add(sums)
            if area_id is not None:
                self._area[(area_id, key)].add(sums)
            if idea_id is not None:
                self._idea[(idea_id, key)].add(sums)


def cycle_figures(cycle: Cycle, *, ideas: bool = True) -> CycleFigures:
    """Every figure of ``cycle`` in three queries (callers pick what the user may see). ``ideas=False`` leaves
    the ideas' figures out (empty) and groups by pool and area only: cheaper where only areas are shown."""
    figures = CycleFigures(cycle)
    by = ("pool_id", "area_id", "idea_id") if ideas else ("pool_id", "area_id")
    grants = Allocation.objects.filter(cycle=cycle).values("level", *by).annotate(total=Sum("gpu_hours"))
    for row in grants.order_by():
        level, total = row["level"], row["total"] or ZERO
        if level == Allocation.Level.ORG:
            figures._count(row["pool_id"], None, None, _Sums(budget=total))
        elif level == Allocation.Level.AREA:
            figures._count(row["pool_id"], row["area_id"], None, _Sums(granted=total, grants=1))
        elif ideas:  # an idea grant is part of its area's grant: it counts for the idea only
            figures._idea[(row["idea_id"], row["pool_id"])].add(_Sums(granted=total, grants=1))
            figures._idea[(row["idea_id"], None)].add(_Sums(granted=total, grants=1))
    usage = UsageEntry.objects.filter(cycle=cycle).values(*by).annotate(total=Sum("gpu_hours"))
    for row in usage.order_by():
        figures._count(row["pool_id"], row["area_id"], row.get("idea_id"), _Sums(used=row["total"] or ZERO))
    requests = Request.objects.filter(cycle=cycle).values("status", *by).annotate(total=Sum("gpu_hours"))
    for row in requests.order_by():
        total = row["total"] or ZERO
        still_open = total if row["status"] == Request.Status.OPEN else ZERO
        figures._count(row["pool_id"], row["area_id"], row.get("idea_id"), _Sums(requested=total, open_requested=still_open))
    return figures
