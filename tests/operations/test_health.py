"""/healthz and /readyz against real Redis, PostgreSQL, Celery worker and beat processes."""
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from operations import health
from operations.models import Heartbeat, HeartbeatKind

# Heartbeats every second in the spawned processes; this test process calls them stale only after 10 missed
# periods, so a loaded 2-core machine does not make the ready state flicker.
FAST_HEARTBEATS = {"FLIGHTDECK_WORKER_HEARTBEAT_SECONDS": "1", "FLIGHTDECK_BEAT_HEARTBEAT_SECONDS": "1"}


@pytest.fixture
def fast_heartbeats(settings):
    settings.FLIGHTDECK_WORKER_HEARTBEAT_SECONDS = 1
    settings.FLIGHTDECK_BEAT_HEARTBEAT_SECONDS = 1
    settings.FLIGHTDECK_HEARTBEAT_STALE_FACTOR = 10


def poll(condition: Callable[[], object], *, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} not reached within {timeout:.0f} s")


def readyz(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.json()


def test_healthz_answers_ok_without_touching_the_database(client):
    # No db fixture: pytest-django's blocker fails the request if the view touches the database.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.timeout(240)
def test_readyz_is_ready_with_a_live_worker_and_beat_and_names_the_worker_once_it_stops(
        client, celery_processes, fast_heartbeats):
    status, body = readyz(client)
    assert status == 503
    assert not body["checks"]["workers"]["ok"] and not body["checks"]["beat"]["ok"]

    worker = celery_processes.worker(queues=("default",), concurrency=1, env=FAST_HEARTBEATS)
    celery_processes.beat(env=FAST_HEARTBEATS)
    poll(lambda: readyz(client)[0] == 200, timeout=90, what="/readyz 200 with worker and beat")

    status, body = readyz(client)
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "workers", "beat"}
    assert body["checks"]["workers"]["detail"] == "1 live worker(s) on queues default"
    assert all(check["ok"] and check["latency_ms"] >= 0 for check in body["checks"].values())

    worker.stop()  # a clean shutdown removes the worker's heartbeat at once
    status, body = readyz(client)
    assert status == 503
    assert body["checks"]["workers"] == {"ok": False, "detail": "no worker heartbeat in the last 10 s",
                                         "latency_ms": body["checks"]["workers"]["latency_ms"]}
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]


@pytest.mark.timeout(120)
def test_beat_records_its_start_before_any_worker_runs_its_heartbeat_task(client, celery_processes, fast_heartbeats):
    celery_processes.beat()  # no worker runs: only beat itself can have written the row
    poll(lambda: Heartbeat.objects.filter(kind=HeartbeatKind.BEAT).exists(), timeout=60, what="beat's own heartbeat")
    assert readyz(client)[1]["checks"]["beat"]["ok"]


def test_readyz_names_redis_when_it_is_down_and_answers_quickly(client, redis_server, fast_heartbeats, db):
    Heartbeat.objects.create(kind=HeartbeatKind.WORKER, name="w1@gpu-01", seen_at=timezone.now(), queues="gpu")
    Heartbeat.objects.create(kind=HeartbeatKind.BEAT, name="beat", seen_at=timezone.now())
    assert readyz(client)[0] == 200

    redis_server.stop()
    started = time.monotonic()
    status, body = readyz(client)
    assert time.monotonic() - started < 5
    assert status == 503
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["detail"] == "ConnectionError"
    assert [name for name, check in body["checks"].items() if not check["ok"]] == ["redis"]

    redis_server.start()
    poll(lambda: readyz(client)[0] == 200, timeout=30, what="/readyz 200 after Redis came back")


def test_readyz_reports_a_stale_beat_with_its_age(client, fast_heartbeats, db):
    Heartbeat.objects.create(kind=HeartbeatKind.WORKER, name="w1@gpu-01", seen_at=timezone.now(), queues="gpu")
    Heartbeat.objects.create(kind=HeartbeatKind.BEAT, name="beat", seen_at=timezone.now() - timedelta(seconds=60))
    status, body = readyz(client)
    assert status == 503
    assert body["checks"]["beat"]["ok"] is False
    assert body["checks"]["beat"]["detail"].startswith("last beat heartbeat 6")
    assert body["checks"]["beat"]["detail"].endswith("s ago (stale after 10 s)")


def test_a_worker_heartbeat_older_than_the_limit_does_not_count(fast_heartbeats, db):
    Heartbeat.objects.create(kind=HeartbeatKind.WORKER, name="old@gpu-01", queues="gpu",
                             seen_at=timezone.now() - timedelta(seconds=11))
    Heartbeat.objects.create(kind=HeartbeatKind.WORKER, name="new@gpu-02", queues="default,gpu",
                             seen_at=timezone.now())
    result = health.check_workers()
    assert result.ok
    assert result.detail == "1 live worker(s) on queues default, gpu"


def test_readyz_leaks_no_connection_details(client, settings, redis_server, db):
    redis_server.stop()
    text = client.get("/readyz").content.decode()
    database = settings.DATABASES["default"]
    for secret in (str(redis_server.port), str(database.get("PORT") or "5432"), database["NAME"],
                   database.get("USER") or "postgres", "Traceback"):
        assert secret not in text
