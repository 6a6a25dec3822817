"""Readiness checks: database, Redis, live workers, beat. Each is cheap, bounded in time and never raises.

A check returns a `CheckResult`; `detail` is meant for operators and the public `/readyz` body, so it names
what failed (a count, an age, an exception class) but never a host name, DSN, password or traceback.
Workers and beat write their own heartbeats (`operations.heartbeats`) into the database, so the worker and beat
checks are one indexed query each instead of a broadcast round trip through the broker.
"""
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.redis_guard import short_timeout_client
from operations.models import Heartbeat, HeartbeatKind

# A check must never hold a request for long: Redis gets one second to connect and one to answer.
REDIS_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    latency_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def _timed(probe: Callable[[], tuple[bool, str]]) -> CheckResult:
    """Run `probe` and time it; an exception is a failed check named by its class (no message: it may hold
    a DSN or a host name)."""
    started = time.perf_counter()
    try:
        ok, detail = probe()
    except Exception as exc:  # a health check reports failures, it does not raise them
        ok, detail = False, f"{type(exc).__name__}"
    return CheckResult(ok=ok, detail=detail, latency_ms=round((time.perf_counter() - started) * 1000, 1))


def worker_stale_after() -> timedelta:
    return timedelta(seconds=settings.FLIGHTDECK_WORKER_HEARTBEAT_SECONDS * settings.FLIGHTDECK_HEARTBEAT_STALE_FACTOR)


def beat_stale_after() -> timedelta:
    return timedelta(seconds=settings.FLIGHTDECK_BEAT_HEARTBEAT_SECONDS * settings.FLIGHTDECK_HEARTBEAT_STALE_FACTOR)


def redis_client() -> redis.Redis:
    """The health checks' and scrapes' client: short timeouts and one retry (``core.redis_guard``)."""
    return short_timeout_client(REDIS_TIMEOUT_SECONDS, retries=1)


def check_database() -> CheckResult:
    def probe() -> tuple[bool, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, "query ok"

    return _timed(probe)


def check_redis() -> CheckResult:
    def probe() -> tuple[bool, str]:
        redis_client().ping()
        return True, "ping ok"

    return _timed(probe)


def live_workers() -> list[Heartbeat]:
    """Workers whose heartbeat is younger than the staleness limit, newest first."""
    since = timezone.now() - worker_stale_after()
    return list(Heartbeat.objects.filter(kind=HeartbeatKind.WORKER, seen_at__gte=since).order_by("-seen_at"))


def check_workers() -> CheckResult:
    def probe() -> tuple[bool, str]:
        workers = live_workers()
        if not workers:
            return False, f"no worker heartbeat in the last {int(worker_stale_after().total_seconds())} s"
        queues = sorted({queue for worker in workers for queue in worker.queues.split(",") if queue})
        return True, f"{len(workers)} live worker(s) on queues {', '.join(queues) or '-'}"

    return _timed(probe)


def check_beat() -> CheckResult:
    def probe() -> tuple[bool, str]:
        beat = Heartbeat.objects.filter(kind=HeartbeatKind.BEAT).first()
        limit = int(beat_stale_after().total_seconds())
        if beat is None:
            return False, "no beat heartbeat recorded yet"
        age = (timezone.now() - beat.seen_at).total_seconds()
        if age > limit:
            return False, f"last beat heartbeat {age:.0f} s ago (stale after {limit} s)"
        return True, f"last beat heartbeat {age:.0f} s ago"

    return _timed(probe)


CHECKS: dict[str, Callable[[], CheckResult]] = {
    "database": check_database,
    "redis": check_redis,
    "workers": check_workers,
    "beat": check_beat,
}


def readiness() -> tuple[bool, dict[str, CheckResult]]:
    """Run every check; ready only when all pass. The worker and beat checks read the database, so a database
    outage fails them too (with the exception class as detail)."""
    results = {name: check() for name, check in CHECKS.items()}
    return all(result.ok for result in results.values()), results
