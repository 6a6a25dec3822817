"""The attempt state machine, as written by workers and the reconciler.

    queued ──claim──► starting ──spawned──► running ──finish──► succeeded | failed | cancelled | preempted
       └──cancel──► cancelled                 └──lease expired (reconciler)──► preempted
    preempted ──► a new queued attempt of the same run (it resumes from the last checkpoint)

Every function is one transaction that re-reads the row and acts only if its state allows, so duplicate
messages, late workers and the reconciler can race without double-starting or double-finishing.
The run's ``status`` mirrors its latest attempt.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from experiments import budget, notifications
from experiments.execution import dispatch, slots
from experiments.models import FINAL_STATES, Attempt, Run, RunStatus

S = RunStatus
ACTIVE_STATES = (S.STARTING, S.RUNNING)


def lease_until(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(seconds=settings.FLIGHTDECK_LEASE_SECONDS)


def attempt_create(*, run: Run) -> Attempt:
    """A new queued attempt of ``run`` whose start message goes out on commit. The database refuses a
    second live attempt of one run (``experiments_one_live_attempt``)."""
    number = (run.attempts.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    attempt = Attempt.objects.create(run=run, number=number, backend=run.backend)
    Run.objects.filter(pk=run.pk).update(status=S.QUEUED, finished_at=None)
    dispatch.start_on_commit(attempt)
    return attempt


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    NOT_CLAIMABLE = "not claimable"  # already claimed, finished or unknown: the message was a duplicate
    NO_SLOT = "no free slot"


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    attempt: Attempt | None = None


@transaction.atomic
def attempt_claim(attempt_id: int, *, host: str, slot_ids: Sequence[int] | None, devices: int = 1) -> Claim:
    """queued → starting on ``host``, holding one of ``slot_ids`` (None: the attempt needs no local slot)
    and charging ``devices`` per wall hour."""
    attempt = Attempt.objects.select_for_update().select_related("run").filter(pk=attempt_id).first()
    if attempt is None or attempt.state != S.QUEUED:
        return Claim(ClaimOutcome.NOT_CLAIMABLE)
    slot = None
    if slot_ids is not None:
        slot = slots.slot_acquire(host=host, attempt=attempt, slot_ids=slot_ids)
        if slot is None:
            return Claim(ClaimOutcome.NO_SLOT, attempt)
    now = timezone.now()
    attempt.state = S.STARTING
    attempt.host = host
    attempt.slot = slot
    attempt.devices = devices
    attempt.heartbeat_at = now
    attempt.lease_expires_at = lease_until(now)
    attempt.save(update_fields=["state", "host", "slot", "devices", "heartbeat_at", "lease_expires_at"])
    Run.objects.filter(pk=attempt.run_id).update(status=S.STARTING)
    return Claim(ClaimOutcome.CLAIMED, attempt)


@transaction.atomic
def attempt_started(
    attempt_id: int,
    *,
    pid: int | None,
    pgid: int | None,
    external_id: str = "",
    code_revision: str = "",
    code_dirty: bool = False,
    resumed_from_step: int | None = None,
) -> bool:
    """starting → running once the trainer process (or Slurm job) exists; False if the attempt was taken away."""
    now = timezone.now()
    updated = Attempt.objects.filter(pk=attempt_id, state=S.STARTING).update(
        state=S.RUNNING,
        pid=pid,
        pgid=pgid,
        external_id=external_id,
        code_revision=code_revision,
        code_dirty=code_dirty,
        resumed_from_step=resumed_from_step,
        started_at=now,
        heartbeat_at=now,
        lease_expires_at=lease_until(now),
    )
    if updated:
        run_id = Attempt.objects.filter(pk=attempt_id).values_list("run_id", flat=True).get()
        Run.objects.filter(pk=run_id).update(status=S.RUNNING, code_revision=code_revision, code_dirty=code_dirty)
        Run.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    return bool(updated)


@dataclass(frozen=True)
class Heartbeat:
    alive: bool  # False: the lease was lost (reconciler preempted it); the caller must stop its trainer
    cancel_requested: bool


def attempt_heartbeat(attempt_id: int, *, host: str) -> Heartbeat:
    """Extend the lease of an attempt this host is executing, and report a pending cancel request."""
    now = timezone.now()
    live = Attempt.objects.filter(pk=attempt_id, state__in=ACTIVE_STATES, host=host)
    if not live.update(heartbeat_at=now, lease_expires_at=lease_until(now)):
        return Heartbeat(alive=False, cancel_requested=False)
    cancel_at = live.values_list("cancel_requested_at", flat=True).first()
    return Heartbeat(alive=True, cancel_requested=cancel_at is not None)


@transaction.atomic
def attempt_finish(
    attempt_id: int, *, host: str, state: str, reason: str, exit_code: int | None = None, log_tail: str = ""
) -> Attempt | None:
    """running/starting → a final state. A ``preempted`` attempt is followed by a new queued one that
    resumes. None when the attempt is no longer this host's to finish (the reconciler got there first)."""
    if state not in FINAL_STATES:
        raise ValueError(f"state must be one of {', '.join(FINAL_STATES)}, got {state!r}")
    attempt = Attempt.objects.select_for_update().select_related("run").filter(pk=attempt_id).first()
    if attempt is None or attempt.state not in ACTIVE_STATES or attempt.host != host:
        return None
    _close(attempt, state=state, reason=reason, exit_code=exit_code, log_tail=log_tail, ended_at=timezone.now())
    return attempt


def _close(attempt: Attempt, *, state: str, reason: str, exit_code: int | None, log_tail: str, ended_at: datetime) -> None:
    """Write the final state, release the slot, charge GPU-hours (also to the compute ledger), and re-queue a
    preempted run."""
    attempt.state = state
    attempt.reason = reason[:300]
    attempt.exit_code = exit_code
    attempt.log_tail = log_tail
    attempt.finished_at = ended_at
    attempt.lease_expires_at = None
    attempt.save(update_fields=["state", "reason", "exit_code", "log_tail", "finished_at", "lease_expires_at"])
    slots.slot_release(attempt=attempt)
    run = attempt.run
    Run.objects.filter(pk=run.pk).update(
        status=state, finished_at=ended_at, gpu_hours=F("gpu_hours") + attempt.gpu_hours
    )
    if state == S.PREEMPTED:
        attempt_create(run=run)
    budget.attempt_settle(attempt.pk)  # after the re-queue, so a resuming study keeps its reservation
    if state != S.PREEMPTED:  # a preempted run resumes: its study has not ended
        notifications.publish_study_run_ended(run.study_id)  # told once its last run has ended


@transaction.atomic
def attempt_expire(attempt_id: int, *, now: datetime | None = None) -> Attempt | None:
    """Reconciler: a starting/running attempt whose lease ran out lost its worker. It becomes
    ``preempted`` (and the run resumes in a new attempt) or ``cancelled`` if a cancel was pending.
    Returns the attempt (host, pgid, external id tell the caller what to kill) or None if it was renewed."""
    now = now or timezone.now()
    attempt = Attempt.objects.select_for_update().select_related("run").filter(pk=attempt_id).first()
    if attempt is None or attempt.state not in ACTIVE_STATES or not attempt.lease_expires_at:
        return None
    if attempt.lease_expires_at >= now:
        return None
    cancelled = attempt.cancel_requested_at is not None
    _close(
        attempt,
        state=S.CANCELLED if cancelled else S.PREEMPTED,
        reason=f"lease expired: no heartbeat from {attempt.host or 'a worker'} since {attempt.heartbeat_at:%H:%M:%S}",
        exit_code=None,
        log_tail="",
        # Charge only the time the worker was known to be alive.
        ended_at=attempt.heartbeat_at or now,
    )
    return attempt


def attempt_mark_enqueued(attempt_id: int) -> None:
    """Record that a start message was (re)sent, so the reconciler does not count it as lost."""
    Attempt.objects.filter(pk=attempt_id, state=S.QUEUED).update(enqueued_at=timezone.now())
