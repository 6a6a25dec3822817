"""Repairs what crashes and lost messages leave behind; run by Celery beat every
``FLIGHTDECK_RECONCILE_SECONDS`` and at the start of every worker (for its own host).

1. Attempts whose lease expired lost their worker: they become ``preempted`` (or ``cancelled`` when a
   cancel was pending), whatever still runs for them is stopped, and a new attempt resumes the run.
2. Queued attempts not claimed within ``FLIGHTDECK_REQUEUE_AFTER_SECONDS`` lost their message (e.g. Redis
   restarted), and those whose start could not be published at all (Redis down at launch) never had one:
   the message is sent (again). Claiming is idempotent, so a duplicate is harmless.
3. Trainer processes on this host that no live attempt of this host owns are killed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from experiments.execution import attempts, dispatch, orphans
from experiments.execution.backends import backend_for
from experiments.models import Attempt, RunStatus

log = logging.getLogger(__name__)


@dataclass
class Report:
    expired: int = 0
    resent: int = 0
    orphans_killed: int = 0


def expire_leases() -> int:
    now = timezone.now()
    host = settings.FLIGHTDECK_HOST
    expired = 0
    candidates = Attempt.objects.filter(state__in=attempts.ACTIVE_STATES, lease_expires_at__lt=now)
    for attempt_id in candidates.values_list("pk", flat=True):
        attempt = attempts.attempt_expire(attempt_id, now=now)
        if attempt is None:
            continue
        expired += 1
        log.warning("attempt %s on %s: lease expired, now %s", attempt.pk, attempt.host, attempt.state)
        backend_for(attempt.backend).stop_lost(attempt, host=host)
    return expired


def resend_lost_messages() -> int:
    cutoff = timezone.now() - timedelta(seconds=settings.FLIGHTDECK_REQUEUE_AFTER_SECONDS)
    # NULL: the launch could not publish at all (broker down), so there is nothing to wait for.
    stale = Attempt.objects.filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff), state=RunStatus.QUEUED)
    resent = 0
    for attempt_id, backend in stale.values_list("pk", "backend"):
        if dispatch.send_start(attempt_id, backend):
            attempts.attempt_mark_enqueued(attempt_id)
            resent += 1
    return resent


def kill_orphans() -> int:
    """Kill trainer processes on this host whose attempt is not live here any more."""
    host = settings.FLIGHTDECK_HOST
    processes = [process for process in orphans.trainer_processes() if process.host == host]
    if not processes:
        return 0
    live = set(
        Attempt.objects.filter(
            pk__in={process.attempt_id for process in processes}, state__in=attempts.ACTIVE_STATES, host=host
        ).values_list("pk", flat=True)
    )
    return orphans.kill_groups([process for process in processes if process.attempt_id not in live])


def reconcile() -> Report:
    report = Report(expired=expire_leases(), resent=resend_lost_messages(), orphans_killed=kill_orphans())
    if report.expired or report.resent or report.orphans_killed:
        log.info("reconciled: %s", report)
    return report
