"""Sending "start attempt N" messages. A message is only a hint: the attempt row decides what happens,
so sending one twice is harmless and losing one is repaired by the reconciler.

With Redis down a launch must still answer at once: its rows are committed, its runs stay ``queued``, and
a publish that fails marks the attempt as never sent (``enqueued_at`` NULL), which the reconciler re-sends
on its next tick once Redis is back. Publishing is bounded: one quick retry, and after a failure this
process skips the broker for ``BROKER_BACKOFF_SECONDS`` instead of waiting on it once per run.
"""
import logging

from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app
from core.redis_guard import PauseAfterFailure
from experiments.models import Attempt, Backend, RunStatus

log = logging.getLogger(__name__)

# Sent by name so the runtime never imports ``experiments.tasks`` (which imports the runtime); the name is
# the task's registered one and must stay stable while messages of older deployments may be in flight.
EXECUTE_ATTEMPT_TASK = "experiments.tasks.execute_attempt"
QUEUES = {Backend.LOCAL: "gpu", Backend.SLURM: "slurm"}
# Celery's default retries a publish three times (about a second against a refused port); one immediate
# retry still covers a pooled connection that predates a Redis restart.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
BROKER_BACKOFF_SECONDS = 10.0
_broker_pause = PauseAfterFailure(BROKER_BACKOFF_SECONDS)  # per process


def send_start(attempt_id: int, backend: str, *, countdown: float | None = None) -> bool:
    """Publish the start message now; False (and a log line) when the broker is unreachable."""
    if _broker_pause.paused:
        return False
    try:
        celery_app.send_task(EXECUTE_ATTEMPT_TASK, args=(attempt_id,), queue=QUEUES[backend],
                             countdown=countdown, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as error:  # noqa: BLE001 - any broker failure; the reconciler re-sends queued attempts
        _broker_pause.failed()
        log.warning("could not publish the start of attempt %s (%s); the reconciler will re-send it", attempt_id, error)
        return False
    return True


def start_on_commit(attempt: Attempt) -> None:
    """Stamp the attempt as enqueued and publish its start message once the transaction commits."""
    Attempt.objects.filter(pk=attempt.pk).update(enqueued_at=timezone.now())
    # robust: the launch is committed; nothing in the publish may turn it into an error page.
    transaction.on_commit(lambda: _send_or_mark_unsent(attempt.pk, attempt.backend), robust=True)


def _send_or_mark_unsent(attempt_id: int, backend: str) -> None:
    if not send_start(attempt_id, backend):
        Attempt.objects.filter(pk=attempt_id, state=RunStatus.QUEUED).update(enqueued_at=None)
