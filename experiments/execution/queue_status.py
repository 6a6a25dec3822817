"""Whether the job queue (the Redis broker) answers, for the warning on experiments pages.

Every experiments page asks, so the answer is kept in this process for ``CHECK_EVERY_SECONDS``; not in
Django's cache, which lives in the same Redis. The probe is bounded (one second to connect, one to answer,
the same short-timeout client as the health checks, ``core.redis_guard``), so a dead broker never stalls a
page for long.
"""
from __future__ import annotations

import time

from redis import RedisError

from core.redis_guard import short_timeout_client

CHECK_EVERY_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 1.0
_checked: tuple[float, bool] | None = None  # (monotonic time of the probe, reachable)


def _broker_answers() -> bool:
    try:
        return bool(short_timeout_client(PROBE_TIMEOUT_SECONDS, retries=1).ping())
    except (RedisError, OSError):
        return False


def job_queue_reachable() -> bool:
    global _checked
    now = time.monotonic()
    if _checked is None or now - _checked[0] >= CHECK_EVERY_SECONDS:
        _checked = (now, _broker_answers())
    return _checked[1]
