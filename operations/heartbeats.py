"""Heartbeats written by the processes themselves: a thread in every worker, a periodic task for beat.

Why a thread in the worker's main process rather than `control.ping` from `/readyz`: a ping is a broadcast
through the broker that costs its full timeout whenever a worker is missing, and a solo-pool worker busy with a
long task cannot answer it. The thread runs beside whatever the pool does, and `/readyz` reads one table.
"""
import logging
import threading

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from operations.models import Heartbeat, HeartbeatKind

log = logging.getLogger(__name__)

BEAT_NAME = "beat"


def record_worker(name: str, queues: list[str]) -> None:
    Heartbeat.objects.update_or_create(kind=HeartbeatKind.WORKER, name=name,
                                       defaults={"seen_at": timezone.now(), "queues": ",".join(sorted(queues))})


def forget_worker(name: str) -> None:
    """A worker that shuts down cleanly says so at once instead of waiting to go stale."""
    Heartbeat.objects.filter(kind=HeartbeatKind.WORKER, name=name).delete()


def record_beat() -> None:
    Heartbeat.objects.update_or_create(kind=HeartbeatKind.BEAT, name=BEAT_NAME, defaults={"seen_at": timezone.now()})


class WorkerHeartbeat:
    """Daemon thread that records `name` every FLIGHTDECK_WORKER_HEARTBEAT_SECONDS until stopped."""

    def __init__(self, name: str, queues: list[str]) -> None:
        self.name = name
        self.queues = queues
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flightdeck-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        try:
            forget_worker(self.name)
        except Exception:
            log.warning("could not remove the heartbeat of %s", self.name, exc_info=True)
        finally:
            close_old_connections()

    def _run(self) -> None:
        while not self._stopped.is_set():
            # The thread owns its own connection; drop it when it is broken (database restart) or obsolete.
            close_old_connections()
            try:
                record_worker(self.name, self.queues)
            except Exception:
                log.warning("worker heartbeat of %s failed; retrying", self.name, exc_info=True)
            self._stopped.wait(settings.FLIGHTDECK_WORKER_HEARTBEAT_SECONDS)
        close_old_connections()
