"""The usage ledger of an area (or one of its ideas) in a cycle, down to the run: each charge with the run,
attempt and host or Slurm job behind it (from the evidence hook), its GPUs, start, end and hours.

The total is the rounded exact sum of the entries, the same number the cycle overview and the area page show
(``compute.figures``); rows show each entry's own hours to four places, so they add up to it exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet, Sum
from django.utils import timezone

from compute import evidence
from compute.evidence import ChargedWork
from compute.figures import hours
from compute.models import Cycle, UsageEntry
from compute.selectors import Table
from ideas.models import Area, Idea

PER_PAGE = 200
COLUMNS = ["Start", "End", "Idea", "Pool", "Run", "Attempt", "Host or Slurm job", "GPUs", "GPU-h"]


@dataclass(frozen=True)
class LedgerRow:
    entry: UsageEntry
    work: ChargedWork | None


@dataclass
class Ledger:
    cycle: Cycle
    area: Area
    idea: Idea | None
    page: Page
    rows: list[LedgerRow]
    total: Decimal
    charges: int


def ledger_entries(cycle: Cycle, *, area: Area, idea: Idea | None = None) -> QuerySet[UsageEntry]:
    entries = UsageEntry.objects.filter(cycle=cycle, area=area).select_related("pool", "idea")
    if idea is not None:
        entries = entries.filter(idea=idea)
    return entries.order_by("segment_start", "id")


def _rows(entries: list[UsageEntry]) -> list[LedgerRow]:
    work = evidence.charged_work(entry.attempt_key for entry in entries)
    return [LedgerRow(entry, work.get(entry.attempt_key)) for entry in entries]


def usage_ledger(cycle: Cycle, *, area: Area, idea: Idea | None = None, page: int | str = 1) -> Ledger:
    """One page of the ledger and the total of all of it."""
    entries = ledger_entries(cycle, area=area, idea=idea)
    totals = entries.aggregate(total=Sum("gpu_hours"))
    paginated = Paginator(entries, PER_PAGE).get_page(page)
    return Ledger(
        cycle=cycle, area=area, idea=idea, page=paginated, rows=_rows(list(paginated.object_list)),
        total=hours(totals["total"]), charges=paginated.paginator.count,
    )


def ledger_table(cycle: Cycle, *, area: Area, idea: Idea | None = None) -> Table:
    """The whole ledger as a table (its CSV)."""
    table = Table("ledger", "Usage ledger", COLUMNS)
    for row in _rows(list(ledger_entries(cycle, area=area, idea=idea))):
        entry, work = row.entry, row.work
        table.rows.append([
            timezone.localtime(entry.segment_start).isoformat(), timezone.localtime(entry.segment_end).isoformat(),
            entry.idea, entry.pool.name, work.run_label if work else entry.attempt_key, work.attempt if work else None,
            work.where if work else None, entry.gpus, entry.gpu_hours,
        ])
    return table
