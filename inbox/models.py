"""A delivered message per recipient, each user's email preference, and outgoing webhooks with their
delivery log."""
from django.conf import settings
from django.db import models
from django.db.models import Q

USER = settings.AUTH_USER_MODEL


class Message(models.Model):
    """One event as one recipient sees it. ``dedupe_key`` names the event; unique per recipient, so a
    repeated delivery (Celery retry, redelivered message) never shows or mails anything twice."""

    class Kind(models.TextChoices):
        IDEA_SUBMITTED = "idea_submitted", "idea submitted"
        IDEA_EDITED = "idea_edited", "idea edited"
        IDEA_TRANSITION = "idea_transition", "idea moved"
        IDEA_COMMENT = "idea_comment", "comment"
        STUDY_FINISHED = "study_finished", "study finished"
        RUN_FAILED = "run_failed", "run failed"
        REQUEST_REVIEWED = "request_reviewed", "request reviewed"

    recipient = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="inbox_messages")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True, help_text="plain text")
    link = models.CharField(max_length=500, blank=True, help_text="site-relative URL of what the message is about")
    dedupe_key = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["dedupe_key", "recipient"], name="inbox_message_once")]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="inbox_message_recipient_idx"),
            # The nav badge counts a user's unread messages on every page; this partial index keeps it small.
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="inbox_message_unread_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient} · {self.subject}"

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class EmailPreference(models.Model):
    """A user's choice about notification email; no row means email is on."""

    user = models.OneToOneField(USER, on_delete=models.CASCADE, primary_key=True, related_name="inbox_email_preference")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)


class OutboxEvent(models.Model):
    """A published event not yet handed to the broker. Written in the transaction of the row it is about,
    so it is committed exactly when that row is; removed once the broker has taken it. Rows that stay (Redis
    was away) are re-sent by the beat task ``inbox.tasks.send_outbox``, so no event is lost to an outage."""

    source = models.CharField(max_length=64)
    ref = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.source} #{self.ref}"


class Webhook(models.Model):
    """A URL that hears, as signed JSON POSTs, the events its owner's inbox receives (of the chosen kinds):
    a team points one at its chat channel. It hears only what the owner may see, because it follows the
    owner's messages, which the apps address by visibility."""

    owner = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, help_text="HMAC-SHA256 key of the X-Flightdeck-Signature header")
    kinds = models.JSONField(default=list, help_text="event kinds it hears (Message.Kind values); all when empty")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} → {self.url}"

    def hears(self, kind: str) -> bool:
        return self.active and (not self.kinds or kind in self.kinds)


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one webhook: the exact body, and how the last attempt went.
    Unique per (webhook, event key), so a redelivered event never posts twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_key = models.CharField(max_length=120)
    kind = models.CharField(max_length=32)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["webhook", "event_key"], name="inbox_webhook_delivery_once")]

    def __str__(self) -> str:
        return f"{self.webhook_id} · {self.event_key} · {self.status}"
