"""`manage.py slurm_usage_drift [--cycle YYYY-MM-DD] [--check]`: the ledger vs `sacct`, per Slurm attempt."""
from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compute.models import Cycle
from experiments.slurm_drift import slurm_usage_drift

TOLERANCE = Decimal("0.001")  # GPU-hours: per-segment rounding of both sides stays far below this


class Command(BaseCommand):
    help = "Report where the compute ledger's GPU-hours for Slurm attempts differ from what sacct accounted."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--cycle", type=date.fromisoformat, default=None,
                            help="any day of the cycle (YYYY-MM-DD); default: the current cycle")
        parser.add_argument("--check", action="store_true", help="exit with status 1 when any attempt drifts")

    def handle(self, *args, cycle: date | None, check: bool, **options) -> None:
        moment = timezone.make_aware(datetime.combine(cycle, time(12))) if cycle else timezone.now()
        found = Cycle.objects.filter(start__lte=moment, end__gt=moment).first()
        if found is None:
            raise CommandError(f"--cycle: no cycle contains {moment:%Y-%m-%d}; cycles exist once budgets were set")
        rows = slurm_usage_drift(cycle=found)
        self.stdout.write(f"cycle {found}: {len(rows)} Slurm attempt(s)")
        self.stdout.write(
            f"{'attempt':>8} {'run':<14} {'job':>8} {'ledger GPU-h':>13} {'sacct GPU-h':>12} {'drift':>9}")
        drifting = 0
        for row in rows:
            drift = row.drift
            marked = drift is None or abs(drift) > TOLERANCE
            drifting += marked
            self.stdout.write(
                f"{row.attempt_id:>8} {row.run:<14} {row.job_id:>8} {row.ledger_gpu_hours:>13.4f} "
                f"{'no answer' if row.sacct_gpu_hours is None else f'{row.sacct_gpu_hours:.4f}':>12} "
                f"{'?' if drift is None else f'{drift:+.4f}':>9}{'  DRIFT' if marked else ''}"
            )
        ledger = sum((row.ledger_gpu_hours for row in rows), Decimal(0))
        accounted = sum((row.sacct_gpu_hours or Decimal(0) for row in rows), Decimal(0))
        self.stdout.write(f"total: ledger {ledger:.4f} GPU-h, sacct {accounted:.4f} GPU-h, "
                          f"drift {ledger - accounted:+.4f} GPU-h; {drifting} attempt(s) drifting")
        if check and drifting:
            raise SystemExit(1)
