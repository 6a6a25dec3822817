"""Reads for the inbox pages and the nav badge."""
from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from core.selectors import get_or_404
from inbox.models import EmailPreference, Message, Webhook, WebhookDelivery


def unread_count(user: AbstractBaseUser) -> int:
    """One COUNT over the partial unread index."""
    return Message.objects.filter(recipient_id=user.pk, read_at__isnull=True).count()


def _for(user: AbstractBaseUser) -> QuerySet[Message]:
    return Message.objects.filter(recipient_id=user.pk)


def inbox_page(user: AbstractBaseUser, *, number: str | int | None, per_page: int = 25) -> Page:
    """Unread messages first, newest first within each group."""
    messages = _for(user).annotate(
        unread=ExpressionWrapper(Q(read_at__isnull=True), output_field=BooleanField())
    ).order_by("-unread", "-created_at", "-id")
    return Paginator(messages, per_page).get_page(number)


def latest_messages(user: AbstractBaseUser, limit: int = 10) -> list[Message]:
    return list(_for(user).order_by("-created_at", "-id")[:limit])


def message_get_for_user(*, user: AbstractBaseUser, message_id: int) -> Message:
    """``user``'s message ``message_id``; 404 for unknown ids and other people's messages alike."""
    return get_or_404(_for(user), f"no message {message_id} in your inbox", pk=message_id)


def email_enabled(user: AbstractBaseUser) -> bool:
    return EmailPreference.objects.filter(user_id=user.pk).values_list("enabled", flat=True).first() is not False


def webhooks_of(user: AbstractBaseUser) -> QuerySet[Webhook]:
    return Webhook.objects.filter(owner_id=user.pk)


def webhook_get_for_user(*, user: AbstractBaseUser, webhook_id: int) -> Webhook:
    """``user``'s webhook; 404 for unknown ids and other people's webhooks alike."""
    return get_or_404(webhooks_of(user), f"no webhook {webhook_id} among yours", pk=webhook_id)


def webhook_deliveries(webhook: Webhook) -> QuerySet[WebhookDelivery]:
    """The delivery log, newest first."""
    return webhook.deliveries.order_by("-created_at", "-id")
