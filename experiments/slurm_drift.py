"""Drift between Flightdeck's compute ledger and Slurm's accounting (`sacct`) for the attempts of one cycle.

The ledger is charged from ``sacct`` while an attempt runs and once more when it ends
(``experiments.budget.attempt_charge``), so the two agree unless charging failed (accounting unreachable,
a worker lost before its final charge) or someone edited either side. This report says where they differ.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum

from compute.models import Cycle, UsageEntry
from compute.services import USAGE_PLACES
from experiments.budget import attempt_charge_key
from experiments.execution.backends import slurm_cli
from experiments.models import Attempt, Backend


@dataclass(frozen=True)
class AttemptDrift:
    attempt_id: int
    run: str  # the run's public id
    job_id: str
    ledger_gpu_hours: Decimal
    sacct_gpu_hours: Decimal | None  # None: sacct did not answer for the job

    @property
    def drift(self) -> Decimal | None:
        """Ledger minus sacct: positive when Flightdeck charged more than the cluster accounted."""
        return None if self.sacct_gpu_hours is None else self.ledger_gpu_hours - self.sacct_gpu_hours


def slurm_usage_drift(*, cycle: Cycle) -> list[AttemptDrift]:
    """Every Slurm attempt that ran during ``cycle``: its GPU-hours in the ledger and in ``sacct`` (elapsed ×
    the allocated count of ``FLIGHTDECK_SLURM["charge_tres"]``, clipped to the cycle), oldest first."""
    ledger = dict(
        UsageEntry.objects.filter(cycle=cycle, attempt_key__startswith="attempt-")
        .values_list("attempt_key").annotate(hours=Sum("gpu_hours")).values_list("attempt_key", "hours")
    )
    attempts = (Attempt.objects.filter(backend=Backend.SLURM, started_at__lt=cycle.end).exclude(external_id="")
                .exclude(finished_at__lt=cycle.start).select_related("run").order_by("started_at", "pk"))
    tres = settings.FLIGHTDECK_SLURM["charge_tres"]
    rows = []
    for attempt in attempts:
        segments = slurm_cli.job_segments(attempt.external_id)
        accounted = None
        if segments is not None:
            accounted = Decimal(0)
            for segment in segments:
                start, end = max(segment.start, cycle.start), min(segment.end, cycle.end)
                if end > start:
                    seconds = int((end - start).total_seconds())
                    accounted += (Decimal(segment.tres.get(tres, 0) * seconds) / Decimal(3600)).quantize(USAGE_PLACES)
        rows.append(AttemptDrift(
            attempt_id=attempt.pk, run=attempt.run.public_id, job_id=attempt.external_id,
            ledger_gpu_hours=ledger.get(attempt_charge_key(attempt.pk), Decimal(0)), sacct_gpu_hours=accounted,
        ))
    return rows
