"""The only writer of ``Attempt.state``: workers, the reconciler and cancels all move attempts through
:func:`_move`, which checks the table in ``experiments.execution.transitions``.

    queued ──claim──► starting ──spawned──► running ──finish──► succeeded | failed | cancelled | preempted
       └──cancel──► cancelled                 └──lease expired (reconciler)──► preempted
    preempted ──► a new queued attempt of the same run (it resumes from the last checkpoint)

Every function is one transaction that re-reads the row and acts only if its state allows, so duplicate
messages, late workers and the reconciler can race without double-starting or double-finishing.
The run's ``status`` mirrors its latest attempt.
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from experiments import budget, charts, notifications, series
from experiments.execution import dispatch, monitor, slots, transitions
from experiments.execution.transitions import ACTIVE_STATES
from experiments.models import FINAL_STATES, LIVE_STATES, Attempt, Run, RunStatus

S = RunStatus


def _move(
    attempt: Attempt, to_state: str, *, run_fields: Callable[[Attempt], dict] | None = None, **fields: object
) -> None:
    """The one write of ``Attempt.state``: check the move, save the attempt's ``fields`` with it and mirror
    the state onto its run, with ``run_fields(attempt)`` read from the updated attempt. Call with the row locked."""
    transitions.check(attempt.pk, attempt.state, to_state)
    attempt.state = to_state
    for name, value in fields.items():
        setattr(attempt, name, value)
    attempt.save(update_fields=["state", *fields])
    Run.objects.filter(pk=attempt.run_id).update(status=to_state, **(run_fields(attempt) if run_fields else {}))


def _locked(attempt_id: int) -> Attempt | None:
    return Attempt.objects.select_for_update().select_related("run").filter(pk=attempt_id).first()


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
    attempt = _locked(attempt_id)
    if attempt is None or attempt.state != S.QUEUED:
        return Claim(ClaimOutcome.NOT_CLAIMABLE)
    slot = None
    if slot_ids is not None:
        slot = slots.slot_acquire(host=host, attempt=attempt, slot_ids=slot_ids)
        if slot is None:
            return Claim(ClaimOutcome.NO_SLOT, attempt)
    now = timezone.now()
    _move(attempt, S.STARTING, host=host, slot=slot, devices=devices, heartbeat_at=now, lease_expires_at=lease_until(now))
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
    attempt = _locked(attempt_id)
    if attempt is None or attempt.state != S.STARTING:
        return False
    now = timezone.now()
    _move(
        attempt,
        S.RUNNING,
        run_fields=lambda _: {"code_revision": code_revision, "code_dirty": code_dirty},
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
    Run.objects.filter(pk=attempt.run_id, started_at__isnull=True).update(started_at=now)
    return True


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
    attempt = _locked(attempt_id)
    if attempt is None or attempt.state not in ACTIVE_STATES or attempt.host != host:
        return None
    _close(attempt, state=state, reason=reason, exit_code=exit_code, log_tail=log_tail, ended_at=timezone.now())
    return attempt


def _close(
    attempt: Attempt, *, state: str, reason: str, exit_code: int | None, log_tail: str, ended_at: datetime, **fields: object
) -> None:
    """Write the final state, release the slot, charge GPU-hours (also to the compute ledger), re-queue a
    preempted run and tell the study's people once its last run has ended. Every final state goes through here."""
    _move(
        attempt,
        state,
        run_fields=lambda closed: {"finished_at": ended_at, "gpu_hours": F("gpu_hours") + closed.gpu_hours},
        reason=reason[:300],
        exit_code=exit_code,
        log_tail=log_tail,
        finished_at=ended_at,
        lease_expires_at=None,
        **fields,
    )
    slots.slot_release(attempt=attempt)
    run = attempt.run
    if state == S.PREEMPTED:
        attempt_create(run=run)
    budget.attempt_settle(attempt.pk)  # after the re-queue, so a resuming study keeps its reservation
    if state == S.FAILED:
        notifications.publish_run_failed(attempt.pk)
    if state != S.PREEMPTED:  # a preempted run resumes: its study has not ended
        notifications.publish_study_run_ended(run.study_id)  # told once its last run has ended
        series.refresh_when_committed(run, names=charts.STORED_METRICS)


@transaction.atomic
def attempt_expire(attempt_id: int, *, now: datetime | None = None) -> Attempt | None:
    """Reconciler: a starting/running attempt whose lease ran out lost its worker. It becomes
    ``preempted`` (and the run resumes in a new attempt) or ``cancelled`` if a cancel was pending.
    Returns the attempt (host, pgid, external id tell the caller what to kill) or None if it was renewed."""
    now = now or timezone.now()
    attempt = _locked(attempt_id)
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


class CancelOutcome(enum.Enum):
    CANCELLED = "cancelled"  # it was queued: closed at once
    REQUESTED = "requested"  # a worker holds it: it stops the trainer on its next heartbeat
    NOT_LIVE = "not live"  # nothing to cancel: the run already ended
    TRAINER_SUCCEEDED = "trainer succeeded"  # the trainer already wrote its success; the worker is recording it


@transaction.atomic
def attempt_cancel(*, run: Run, by: AbstractBaseUser) -> CancelOutcome:
    """Cancel the live attempt of ``run`` for ``by`` (a person). A queued attempt is closed like any other
    (``_close``); a starting/running one is asked to stop. A trainer that has already written
    ``succeeded`` has won: its run stays succeeded and nothing is requested."""
    attempt = run.attempts.select_for_update().select_related("run").filter(state__in=LIVE_STATES).first()
    if attempt is None:
        return CancelOutcome.NOT_LIVE
    now = timezone.now()
    if attempt.state == S.QUEUED:
        Attempt.objects.filter(pk=attempt.pk).update(cancelled_by=by)
        _close(attempt, state=S.CANCELLED, reason=f"cancelled by {by}", exit_code=None, log_tail="", ended_at=now,
               cancel_requested_at=now)
        return CancelOutcome.CANCELLED
    if trainer_succeeded(attempt.run):
        return CancelOutcome.TRAINER_SUCCEEDED
    Attempt.objects.filter(pk=attempt.pk).update(cancel_requested_at=now, cancelled_by=by,
                                                 reason=f"cancel requested by {by}")
    return CancelOutcome.REQUESTED


def trainer_succeeded(run: Run) -> bool:
    """Whether the trainer of ``run`` has written its final ``succeeded`` (read where the run directory is
    visible; elsewhere the worker settles the race, see ``supervisor``)."""
    return monitor.read_status(run.run_dir).get("status") == "succeeded"
