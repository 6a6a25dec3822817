"""Celery tasks: take ids, call one service. Delivery is idempotent, so late acks and retries are safe."""
from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from inbox import services, webhook_services

# Tries of one webhook delivery before it is marked failed; waits double from FLIGHTDECK_WEBHOOK_RETRY_SECONDS.
WEBHOOK_TRIES = 8
WEBHOOK_MAX_WAIT_SECONDS = 600


# OSError covers smtplib's errors and refused connections: the mail server may be back in a minute.
@shared_task(acks_late=True, autoretry_for=(OperationalError, OSError), retry_backoff=True, retry_backoff_max=600,
             retry_jitter=True, max_retries=8, soft_time_limit=60, time_limit=90)
def deliver_event(source: str, ref: int) -> int:
    """Returns how many emails went out."""
    return services.event_deliver(source=source, ref=ref).emailed


@shared_task(soft_time_limit=120, time_limit=150)
def send_outbox() -> int:
    """Beat: hand over the events and webhook deliveries that could not be sent when they happened."""
    return services.outbox_send() + webhook_services.deliveries_resend()


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), max_retries=WEBHOOK_TRIES,
             soft_time_limit=30, time_limit=45)
def send_webhook(self, delivery_id: int) -> str:
    """POST one delivery; a retryable failure tries again later with a doubling wait, the last one fails it."""
    final = self.request.retries + 1 >= WEBHOOK_TRIES
    delivery = webhook_services.delivery_attempt(delivery_id, final=final)
    if delivery is None:
        return "gone"
    if delivery.status == delivery.Status.PENDING:
        wait = min(WEBHOOK_MAX_WAIT_SECONDS, settings.FLIGHTDECK_WEBHOOK_RETRY_SECONDS * 2 ** self.request.retries)
        raise self.retry(countdown=wait)
    return delivery.status
