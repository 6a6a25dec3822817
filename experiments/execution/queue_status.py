"""Whether the job queue (the Redis broker) answers, for the warning on experiments pages.

Every experiments page asks, so the answer is kept in this process for ``CHECK_EVERY_SECONDS``; not in
Django's cache, which lives in the same Redis. ``operations.health.check_redis`` bounds the probe itself
(one second to connect, one to answer), so a dead broker never stalls a page for long.
"""
from __future__ import annotations

import time

from operations.health import check_redis

CHECK_EVERY_SECONDS = 5.0
_checked: tuple[float, bool] | None = None  # (monotonic time of the probe, reachable)


def job_queue_reachable() -> bool:
    global _checked
    now = time.monotonic()
    if _checked is None or now - _checked[0] >= CHECK_EVERY_SECONDS:
        _checked = (now, check_redis().ok)
    return _checked[1]
