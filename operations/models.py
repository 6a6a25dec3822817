"""Liveness records the processes write about themselves; readiness and metrics read them."""
from django.db import models


class HeartbeatKind(models.TextChoices):
    WORKER = "worker", "Celery worker"
    BEAT = "beat", "Celery beat"


class Heartbeat(models.Model):
    """Last sign of life of one worker (by node name) or of beat (one row, name "beat").

    Rows live in the database, the source of truth, so readiness does not depend on Redis for what it reports
    about workers and beat. Transient by nature: not part of backups.
    """

    kind = models.CharField(max_length=16, choices=HeartbeatKind.choices)
    name = models.CharField(max_length=255)
    seen_at = models.DateTimeField()
    queues = models.CharField(max_length=255, blank=True, help_text="comma-separated queues a worker consumes")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="operations_heartbeat_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
