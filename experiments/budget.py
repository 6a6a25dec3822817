"""GPU-hour budgets for studies: the bridge from experiments to the compute ledger.

- **Launch**: a study's estimate is reserved on the grant it runs under (``compute.services.launch_authorize``)
  before its runs are queued; a refusal raises :class:`BudgetRefused` (→ 409 with the numbers). A reviewer
  may override, which compute logs on the hold.
- **Charging**: every attempt charges ``devices × wall-hours`` (a CPU slot counts as one GPU) to that grant,
  every ``FLIGHTDECK_CHARGE_SECONDS`` while it runs and once more when it ends. Compute charges only time
  not yet charged for the attempt, so charging [started, now) again and again is safe.
- **Release**: when no run of the study is live any more, what is left of its reservation is freed.

Which grant: an ablation of one idea runs under that idea's grant (compute falls back to its area's grant
when the idea has none). Any study of several ideas runs under the area grant of its *first* idea (the
composition order the launcher chose): integration work belongs to an area rather than to one idea, and
picking the first idea's area is predictable to whoever lists the ideas.

Everything runs in ``FLIGHTDECK_DEFAULT_POOL``. A site without any compute pool does not budget launches
(nothing to charge to); once pools exist, an unknown pool name is a 400 naming the setting.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from compute import services as compute_services
from compute.errors import ComputeConflict
from compute.models import Pool, UsageEntry
from compute.services import LaunchDecision
from experiments.execution.backends import UsageSegment, backend_for
from experiments.models import LIVE_STATES, Attempt, Run, Study
from experiments.planning import StudyPlan
from ideas.models import Area, Idea

log = logging.getLogger(__name__)

# Without a measured throughput there is no forecast; a launch must then still find *some* hours left on
# its grant, so an exhausted grant refuses it rather than letting it run uncounted-for.
UNFORECAST_ESTIMATE = Decimal("0.01")


class BudgetRefused(ComputeConflict):
    """The study's estimate exceeds what is left of its grant. ``details``: requested, remaining, grant and
    can_grant_more (who to ask)."""

    def __init__(self, decision: LaunchDecision):
        super().__init__(
            decision.message,
            requested=decision.requested,
            remaining=decision.remaining,
            grant=decision.grant,
            can_grant_more=decision.can_grant_more,
        )


@dataclass(frozen=True)
class ChargeTarget:
    area: Area
    idea: Idea | None  # None: the area's grant


def charge_target(kind: str, ideas: Sequence[Idea]) -> ChargeTarget:
    """The grant a study of ``ideas`` (in composition order) runs under; see the module docstring."""
    if not ideas:
        raise ValueError("a study has at least one idea")
    if kind == Study.Kind.ABLATION and len(ideas) == 1:
        return ChargeTarget(ideas[0].area, ideas[0])
    return ChargeTarget(ideas[0].area, None)


def study_charge_target(study: Study) -> ChargeTarget:
    members = study.study_ideas.select_related("idea__area").order_by("position")
    return charge_target(study.kind, [member.idea for member in members])


def budget_pool() -> Pool | None:
    """The pool studies are charged to, or None where no pool is defined (budgets are off)."""
    name = settings.FLIGHTDECK_DEFAULT_POOL
    pool = Pool.objects.filter(name=name).first()
    if pool is None and Pool.objects.exists():
        known = ", ".join(Pool.objects.values_list("name", flat=True))
        raise ValidationError({"pool": f"FLIGHTDECK_DEFAULT_POOL names unknown pool {name!r}; pools: {known}"})
    return pool


def study_launch_key(study_id: int) -> str:
    return f"study-{study_id}"


def attempt_charge_key(attempt_id: int) -> str:
    return f"attempt-{attempt_id}"


def study_estimate_gpu_hours(plan: StudyPlan) -> Decimal:
    """What a launch reserves: the plan's estimate (``plan_study`` owns it), or a token amount without one."""
    return plan.estimated_gpu_hours if plan.estimated_gpu_hours is not None else UNFORECAST_ESTIMATE


def study_authorize(
    *, study: Study, plan: StudyPlan, user: AbstractBaseUser, override: bool = False, override_reason: str = ""
) -> LaunchDecision | None:
    """Reserve the study's estimate on its grant (call inside the launch's transaction, before queueing).

    Raises :class:`BudgetRefused` when the grant has too little left, ``PermissionDenied`` when a
    non-reviewer asks to override. None when no pool is defined.
    """
    pool = budget_pool()
    if pool is None:
        return None
    target = charge_target(plan.kind, plan.ideas)
    decision = compute_services.launch_authorize(
        user=user, area=target.area, idea=target.idea, pool=pool, estimated_gpu_hours=study_estimate_gpu_hours(plan),
        launch_key=study_launch_key(study.pk), override=override, override_reason=override_reason,
    )
    if not decision.allowed:
        raise BudgetRefused(decision)
    return decision


def attempt_charge(attempt_id: int) -> list[UsageEntry]:
    """Charge the attempt's time from its start to its end (or its last heartbeat while it runs), as the
    backend accounted it where it can (Slurm: ``sacct``'s elapsed × allocated TRES), else the worker's clock."""
    attempt = Attempt.objects.select_related("run__study").get(pk=attempt_id)
    end = attempt.finished_at or attempt.heartbeat_at
    if attempt.started_at is None or end is None or end <= attempt.started_at:
        return []  # never ran: nothing to charge
    pool = budget_pool()
    if pool is None:
        return []
    study = attempt.run.study
    target = study_charge_target(study)
    segments = backend_for(attempt.backend).usage(attempt, now=end)
    if segments is None:
        segments = [UsageSegment(start=attempt.started_at, end=end, devices=attempt.devices)]
    entries = []
    for segment in segments:
        if segment.end > segment.start:
            entries += compute_services.usage_charge_segment(
                attempt_key=attempt_charge_key(attempt.pk), segment_start=segment.start, segment_end=segment.end,
                gpus=segment.devices, pool=pool, area=target.area, idea=target.idea,
                launch_key=study_launch_key(study.pk),
            )
    return entries


def attempt_charge_if_due(attempt_id: int, *, now: datetime | None = None) -> None:
    """The supervisor's periodic charge: at most every ``FLIGHTDECK_CHARGE_SECONDS`` of charged time.

    A failure is logged, never raised: accounting must not stop a training run, and the next charge (or
    the one at the attempt's end) covers the same time again.
    """
    now = now or timezone.now()
    try:
        charged_until = UsageEntry.objects.filter(attempt_key=attempt_charge_key(attempt_id)).aggregate(
            end=Max("segment_end")
        )["end"] or Attempt.objects.filter(pk=attempt_id).values_list("started_at", flat=True).first()
        if charged_until is None or (now - charged_until).total_seconds() < settings.FLIGHTDECK_CHARGE_SECONDS:
            return
        attempt_charge(attempt_id)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("attempt %s: charging its GPU-hours failed; the next charge retries", attempt_id)


def study_release_if_done(study_id: int) -> None:
    """Free what is left of the study's reservation once none of its runs is live."""
    if not Run.objects.filter(study_id=study_id, status__in=LIVE_STATES).exists():
        compute_services.launch_release(launch_key=study_launch_key(study_id))


def attempt_settle(attempt_id: int) -> None:
    """At an attempt's end (inside its closing transaction): charge the rest of its time, release the study's
    reservation if it was the last live run. A failure is logged and rolled back to a savepoint so the
    attempt still ends; its usage then stays short by the uncharged time."""
    try:
        with transaction.atomic():
            attempt_charge(attempt_id)
            study_release_if_done(Attempt.objects.filter(pk=attempt_id).values_list("run__study_id", flat=True).get())
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("attempt %s: charging its final GPU-hours failed", attempt_id)
