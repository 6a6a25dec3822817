"""Sending "start attempt N" messages. A message is only a hint: the attempt row decides what happens,
so sending one twice is harmless and losing one is repaired by the reconciler."""
import logging

from django.db import transaction
from django.utils import timezone

from experiments.models import Attempt, Backend

log = logging.getLogger(__name__)

QUEUES = {Backend.LOCAL: "gpu", Backend.SLURM: "slurm"}


def send_start(attempt_id: int, backend: str, *, countdown: float | None = None) -> bool:
    """Publish the start message now; False (and a log line) when the broker is unreachable."""
    from experiments.tasks import execute_attempt  # the tasks module imports services, which import this

    try:
        execute_attempt.apply_async((attempt_id,), queue=QUEUES[backend], countdown=countdown)
    except Exception as error:  # noqa: BLE001 - any broker failure; the reconciler re-sends queued attempts
        log.warning("could not publish the start of attempt %s (%s); the reconciler will re-send it", attempt_id, error)
        return False
    return True


def start_on_commit(attempt: Attempt) -> None:
    """Stamp the attempt as enqueued and publish its start message once the transaction commits."""
    Attempt.objects.filter(pk=attempt.pk).update(enqueued_at=timezone.now())
    transaction.on_commit(lambda: send_start(attempt.pk, attempt.backend))
