"""Writes for outgoing webhooks: create, delete, ping, queue an event's deliveries, record an attempt.

A delivery row is written (unique per webhook and event) before anything is sent, and the send is handed to
Celery after commit; Redis only carries that message. A delivery whose message was lost (Redis away) is
handed over again by the outbox beat task. Each attempt is recorded on the row: the delivery log.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.text import validate_storable_text
from inbox import webhooks
from inbox.events import Event
from inbox.models import Message, Webhook, WebhookDelivery

PING = "ping"
MAX_WEBHOOKS_PER_USER = 20


def _send_later(delivery_ids: Iterable[int]) -> None:
    from inbox.tasks import send_webhook  # tasks → services: imported when first needed

    for delivery_id in delivery_ids:
        try:
            send_webhook.delay(delivery_id)
        except Exception:  # noqa: BLE001 - any broker failure: the outbox beat task hands it over later
            return


def _queue_after_commit(delivery_ids: list[int]) -> None:
    if delivery_ids:
        transaction.on_commit(lambda: _send_later(delivery_ids), robust=True)


@transaction.atomic
def webhook_create(*, owner: AbstractBaseUser, name: str, url: str, kinds: Iterable[str] = ()) -> Webhook:
    """A webhook with a fresh secret; a first ping is queued at once, so its owner sees the receiver answer."""
    name, kinds = name.strip(), list(dict.fromkeys(kinds))
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the webhook a name, e.g. the channel it posts to."
    elif len(name) > Webhook._meta.get_field("name").max_length:
        errors["name"] = "At most 100 characters."
    try:
        url = webhooks.check_url(url)
    except webhooks.RefusedAddress as refused:
        errors["url"] = str(refused)
    if len(url) > Webhook._meta.get_field("url").max_length:
        errors["url"] = "At most 500 characters."
    if unknown := [kind for kind in kinds if kind not in Message.Kind.values]:
        errors["kinds"] = f"unknown event kind {unknown[0]!r}; allowed: {', '.join(Message.Kind.values)}"
    if Webhook.objects.filter(owner=owner).count() >= MAX_WEBHOOKS_PER_USER:
        errors["name"] = f"At most {MAX_WEBHOOKS_PER_USER} webhooks per user; delete one first."
    if errors:
        raise ValidationError(errors)
    validate_storable_text({"name": name, "url": url})
    webhook = Webhook.objects.create(owner=owner, name=name, url=url, kinds=kinds, secret=secrets.token_hex(32))
    webhook_ping(webhook=webhook)
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


def _payload(kind: str, key: str, subject: str, body: str, link: str) -> dict:
    return {"event": kind, "key": key, "subject": subject, "body": body,
            "url": f"{settings.FLIGHTDECK_SITE_URL}{link}" if link else "", "sent_by": "flightdeck"}


@transaction.atomic
def webhook_ping(*, webhook: Webhook) -> WebhookDelivery:
    """A test delivery (kind ``ping``), sent whatever kinds the webhook hears."""
    key = f"ping:{timezone.now().timestamp():.6f}"
    delivery = WebhookDelivery.objects.create(
        webhook=webhook, event_key=key, kind=PING,
        payload=_payload(PING, key, f"Ping from Flightdeck to “{webhook.name}”", "A test delivery.", ""))
    _queue_after_commit([delivery.pk])
    return delivery


@transaction.atomic
def deliveries_queue(event: Event) -> int:
    """A delivery per active webhook of the event's recipients that hears its kind; returns how many are new."""
    hooks = [hook for hook in Webhook.objects.filter(owner_id__in=event.recipient_ids, active=True,
                                                     owner__is_active=True) if hook.hears(event.kind)]
    if not hooks:
        return 0
    known = set(WebhookDelivery.objects.filter(event_key=event.key, webhook__in=hooks).values_list("webhook_id", flat=True))
    missing = [hook for hook in hooks if hook.pk not in known]
    payload = _payload(event.kind, event.key, event.subject, event.body, event.link)
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook=hook, event_key=event.key, kind=event.kind, payload=payload) for hook in missing],
        ignore_conflicts=True)  # a concurrent delivery of the same event may have written some first
    # ignore_conflicts leaves the primary keys unset: read back the new rows' ids.
    new_ids = list(WebhookDelivery.objects.filter(event_key=event.key, webhook__in=missing, attempts=0)
                   .values_list("pk", flat=True))
    _queue_after_commit(new_ids)
    return len(missing)


def delivery_attempt(delivery_id: int, *, final: bool) -> WebhookDelivery | None:
    """POST one pending delivery and record the attempt; ``final`` marks a retryable failure as failed (the
    last try). Returns the delivery, or None when it is not pending (sent already, or deleted)."""
    delivery = (WebhookDelivery.objects.select_related("webhook")
                .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).first())
    if delivery is None:
        return None
    hook = delivery.webhook
    outcome = webhooks.post(url=hook.url, secret=hook.secret, kind=delivery.kind, delivery_id=delivery.pk,
                            payload=delivery.payload)
    now = timezone.now()
    if outcome.delivered:
        status = WebhookDelivery.Status.DELIVERED
    elif outcome.retry and not final:
        status = WebhookDelivery.Status.PENDING
    else:
        status = WebhookDelivery.Status.FAILED
    delivery.status, delivery.response_code, delivery.error = status, outcome.code, outcome.error
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.delivered_at = now if outcome.delivered else None
    WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).update(
        status=status, response_code=outcome.code, error=outcome.error, attempts=delivery.attempts,
        last_attempt_at=now, delivered_at=delivery.delivered_at)
    return delivery


# A pending delivery whose last word is older than this lost its Celery message (Redis away, worker killed).
STALE_SECONDS = 15 * 60


def deliveries_resend(*, limit: int = 200) -> int:
    """Beat: hand pending deliveries that were never tried, or not for a long while, to Celery again."""
    now = timezone.now()
    stale = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, created_at__lt=now - timedelta(seconds=30))
    stale = stale.exclude(last_attempt_at__gte=now - timedelta(seconds=STALE_SECONDS))
    ids = list(stale.order_by("pk").values_list("pk", flat=True)[:limit])
    _send_later(ids)
    return len(ids)
