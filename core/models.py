"""Rows the shared API machinery keeps: the answers to writes sent with an ``Idempotency-Key``."""
from django.conf import settings
from django.db import models


class IdempotentRequest(models.Model):
    """A successful write sent with an ``Idempotency-Key`` and the answer it got. The same user sending the
    same key again (a client retrying after a dropped connection) gets this answer back instead of the work
    being done twice (``core.idempotency``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body of the first request")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="core_idempotent_request_unique")]

    def __str__(self) -> str:
        return f"{self.key} by user {self.user_id}"
