"""Celery tasks: take ids, call one service. Delivery is idempotent, so late acks and retries are safe."""
from celery import shared_task
from django.db import OperationalError

from ideas import services


@shared_task(acks_late=True, autoretry_for=(OperationalError, OSError), retry_backoff=True, max_retries=5,
             soft_time_limit=60, time_limit=90)
def notify_watchers(activity_id: int) -> int:
    return services.activity_notify_watchers(activity_id=activity_id)
