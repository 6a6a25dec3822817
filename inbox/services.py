"""Writes to the inbox: deliver events as messages and email, mark them read, set the email preference.

Delivery is idempotent: messages are unique per (recipient, dedupe_key), and a message's email is sent only
while its ``emailed_at`` is empty, under a row lock, so retries and redelivered tasks send each email once.
(A worker killed between the SMTP server's acceptance and the commit of ``emailed_at`` sends it again on
redelivery: at least once there, never silently lost.)
"""
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from inbox import events, selectors, webhook_services
from inbox.events import Event
from inbox.models import EmailPreference, Message, OutboxEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    created: int  # in-app messages created now (0 on a repeat)
    emailed: int  # emails sent now


def event_deliver(*, source: str, ref: int) -> Delivery:
    """Build the event ``source``/``ref`` from the database and deliver it; nothing to say → nothing done."""
    event = events.build(source, ref)
    return deliver(event) if event is not None else Delivery(created=0, emailed=0)


def deliver(event: Event) -> Delivery:
    """One in-app message per active recipient, a webhook delivery per recipient's webhook that hears the
    kind, then one email to each who has an address and wants email.

    Raises the first email error after trying every recipient, so the Celery task retries; messages, webhook
    deliveries and emails that already went out are not repeated then.
    """
    created = _store(event)
    webhook_services.deliveries_queue(event)
    emailed, error = 0, None
    pending = (
        Message.objects.filter(dedupe_key=event.key, emailed_at__isnull=True)
        .exclude(recipient__email="")
        .exclude(recipient__inbox_email_preference__enabled=False)
        .values_list("pk", flat=True)
    )
    for message_id in list(pending):
        try:
            emailed += _email(message_id)
        except OSError as failure:  # smtplib's errors are OSErrors, as are refused connections
            log.warning("inbox: email of message %s failed: %s", message_id, failure)
            error = error or failure
    if error is not None:
        raise error
    return Delivery(created=created, emailed=emailed)


@transaction.atomic
def _store(event: Event) -> int:
    users = set(
        get_user_model().objects.filter(pk__in=event.recipient_ids, is_active=True).values_list("pk", flat=True)
    )
    missing = users - set(Message.objects.filter(dedupe_key=event.key).values_list("recipient_id", flat=True))
    # ignore_conflicts: a concurrent delivery of the same event may insert the same rows first.
    Message.objects.bulk_create(
        [Message(recipient_id=user_id, kind=event.kind, subject=event.subject, body=event.body, link=event.link,
                 dedupe_key=event.key) for user_id in missing],
        ignore_conflicts=True,
    )
    return len(missing)


@transaction.atomic
def _email(message_id: int) -> int:
    """Send one message's email unless another worker holds it or it went out already; 1 if sent now."""
    message = (
        Message.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("recipient")
        .filter(pk=message_id, emailed_at__isnull=True)
        .first()
    )
    if message is None:
        return 0
    body = f"{message.body}\n\n{settings.FLIGHTDECK_SITE_URL}{message.link}\n\n-- \n" \
           f"Your Flightdeck inbox; email settings: {settings.FLIGHTDECK_SITE_URL}{reverse('inbox:index')}\n"
    # One message per recipient, so no one sees the others' addresses.
    send_mail(message.subject, body, settings.DEFAULT_FROM_EMAIL, [message.recipient.email])
    message.emailed_at = timezone.now()
    message.save(update_fields=["emailed_at"])
    return 1


def message_mark_read(*, user: AbstractBaseUser, message_id: int) -> Message:
    """Mark one of ``user``'s messages read (again is harmless); 404 for anyone else's."""
    message = selectors.message_get_for_user(user=user, message_id=message_id)
    if message.read_at is None:
        message.read_at = timezone.now()
        Message.objects.filter(pk=message.pk, read_at__isnull=True).update(read_at=message.read_at)
    return message


def messages_mark_all_read(*, user: AbstractBaseUser) -> int:
    """Mark every unread message of ``user`` read; returns how many were unread."""
    return Message.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())


def email_preference_set(*, user: AbstractBaseUser, enabled: bool) -> EmailPreference:
    preference, _ = EmailPreference.objects.update_or_create(user=user, defaults={"enabled": enabled})
    return preference


# An event younger than this is probably still being sent by its own on-commit hook.
OUTBOX_GRACE_SECONDS = 30


def outbox_send(*, limit: int = 500) -> int:
    """Hand the oldest waiting outbox events to the broker; stops at the first broker failure."""
    cutoff = timezone.now() - timedelta(seconds=OUTBOX_GRACE_SECONDS)
    sent = 0
    for row in OutboxEvent.objects.filter(created_at__lt=cutoff).order_by("pk")[:limit]:
        if not events.send_pending(row.pk, row.source, row.ref):
            break
        sent += 1
    return sent
