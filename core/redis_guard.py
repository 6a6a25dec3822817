"""Talking to Redis from request paths without letting a Redis outage stall or break them.

Code on a page's path that talks to Redis directly (rate limits, request metrics, health checks) takes a client
from here: its timeouts are short and chosen per use, and it keeps the redis-py error types the callers catch.
(Django's cache gets its own socket timeouts from ``CACHES["default"]["OPTIONS"]`` in the settings.) Code
that may be skipped while Redis is away (metrics recording, start messages) remembers a failure for a while
with ``PauseAfterFailure``, so a dead Redis costs one timeout per pause instead of one per call.
"""
from __future__ import annotations

import time
from functools import lru_cache

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry


@lru_cache(maxsize=None)
def short_timeout_client(timeout_seconds: float, retries: int) -> redis.Redis:
    """One pooled client per (timeout, retries) and process; redis-py opens fresh connections after a fork.
    One retry is what a pooled connection broken by a Redis restart needs; zero where a miss is cheaper."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout_seconds,
                                socket_connect_timeout=timeout_seconds, retry=Retry(NoBackoff(), retries))


class PauseAfterFailure:
    """Per-process memory of a recent failure: after ``failed()``, ``paused`` is true for ``seconds``, so a
    dead service costs one timeout per pause instead of one per call."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until = 0.0

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._until

    def failed(self) -> None:
        self._until = time.monotonic() + self.seconds
