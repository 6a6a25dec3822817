"""Celery tasks: take ids, call one service. Delivery is idempotent, so late acks and retries are safe."""
from celery import shared_task
from django.db import OperationalError

from inbox import services


# OSError covers smtplib's errors and refused connections: the mail server may be back in a minute.
@shared_task(acks_late=True, autoretry_for=(OperationalError, OSError), retry_backoff=True, retry_backoff_max=600,
             retry_jitter=True, max_retries=8, soft_time_limit=60, time_limit=90)
def deliver_event(source: str, ref: int) -> int:
    """Returns how many emails went out."""
    return services.event_deliver(source=source, ref=ref).emailed


@shared_task(soft_time_limit=120, time_limit=150)
def send_outbox() -> int:
    """Beat: hand over the events that could not be sent when they happened; returns how many went."""
    return services.outbox_send()
