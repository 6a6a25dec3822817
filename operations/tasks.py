"""Celery side of operations: beat's heartbeat task and the worker heartbeat thread's start and stop."""
from celery import shared_task
from celery.signals import beat_init, worker_ready, worker_shutting_down

from operations import heartbeats

_worker_heartbeat: heartbeats.WorkerHeartbeat | None = None


@shared_task(ignore_result=True)
def beat_heartbeat() -> None:
    """Sent by beat on a schedule (settings: operations-beat-heartbeat); run by any worker on `default`."""
    heartbeats.record_beat()


@beat_init.connect
def _record_beat_start(**_: object) -> None:
    # Beat sends its first heartbeat task only after one period; say "started" at once, so a fresh
    # installation is ready within seconds. Celery logs an exception raised here and beat carries on.
    heartbeats.record_beat()


@worker_ready.connect
def _start_worker_heartbeat(sender, **_: object) -> None:
    global _worker_heartbeat
    queues = sorted(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    _worker_heartbeat = heartbeats.WorkerHeartbeat(sender.hostname, queues)
    _worker_heartbeat.start()


@worker_shutting_down.connect
def _stop_worker_heartbeat(**_: object) -> None:
    # A worker in warm shutdown takes no new work, so it stops counting as live right away.
    if _worker_heartbeat is not None:
        _worker_heartbeat.stop()
