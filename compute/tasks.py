"""Celery tasks of the compute app: beat keeps the cycle calendar and phases on schedule."""
from celery import shared_task

from compute import services


@shared_task(acks_late=True, time_limit=120)
def advance_cycles() -> list[dict]:
    """Create the current and next cycle if missing and move phases forward; idempotent, so beat may fire late
    or twice."""
    return [move.__dict__ for move in services.cycle_schedule_advance()]
