"""Celery tasks: take ids, call one service."""
from celery import shared_task

from accounts import services


# OSError: smtplib's errors and refused connections; the mail server may be back in a minute.
@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5, soft_time_limit=60, time_limit=90)
def send_password_reset(user_id: int, domain: str, use_https: bool) -> bool:
    """The reset link is made here, in the worker, so no token travels through the broker."""
    return services.password_reset_email_send(user_id=user_id, domain=domain, use_https=use_https)
