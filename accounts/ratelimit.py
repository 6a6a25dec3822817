"""Rate limits for sign-in and the REST API, counted in the shared Redis so they hold across web processes.

Each limit is a fixed window that opens with its first hit: one Redis transaction increments the counter,
sets its expiry only if it has none yet (EXPIRE NX) and reads the time left, so every web process sees the
same count and `Retry-After` is exact. Rates are strings such as ``"10/15m"`` (N hits per window; the window
is a number with s, m or h), read from ``settings.FLIGHTDECK_RATELIMITS`` on every call, so tests and
operators change them without a restart of this module.

When Redis cannot be reached:
- the API **fails open** (logged warning): the limit protects capacity, not access — every request is
  still authenticated and authorised against the database, and turning a cache outage into a full API
  outage would stop every training script that reports to the API;
- sign-in **fails closed** (HTTP 503): the per-username limit is the only brake on password guessing, and
  people already signed in keep working, because sessions live in the database, not in Redis.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from django.conf import settings
from django.contrib.auth.forms import UsernameField
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from core.redis_guard import short_timeout_client

logger = logging.getLogger(__name__)
T = TypeVar("T")

KEY_PREFIX = "flightdeck:rl"
_RATE = re.compile(r"^\s*(?P<limit>\d+)\s*/\s*(?P<count>\d*)\s*(?P<unit>[smh])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# Short timeouts: with Redis unreachable, the fail-open/fail-closed decision must come in a second, not hang.
_SOCKET_TIMEOUT_SECONDS = 1.0


class Unavailable(Exception):
    """The shared counter store (Redis) could not be reached."""


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int


@dataclass(frozen=True)
class Count:
    """A counter after (or without) a hit: `value` hits so far in a window that closes in `retry_after` s."""

    value: int
    limit: int
    retry_after: int

    @property
    def exceeded(self) -> bool:
        return self.value > self.limit

    @property
    def exhausted(self) -> bool:
        """No hit is left in this window."""
        return self.value >= self.limit


def parse_rate(text: str, *, name: str) -> Rate:
    """``"600/1m"`` → Rate(600, 60); raises ImproperlyConfigured naming the setting."""
    match = _RATE.match(text)
    if not match or int(match["limit"]) < 1 or match["count"] == "0":
        raise ImproperlyConfigured(
            f"FLIGHTDECK_RATELIMITS[{name!r}] must look like '10/15m' (hits per window of N s, m or h), got {text!r}")
    return Rate(int(match["limit"]), int(match["count"] or 1) * _UNIT_SECONDS[match["unit"]])


def configured_rate(name: str) -> Rate:
    return parse_rate(settings.FLIGHTDECK_RATELIMITS[name], name=name)


def client_ip(request: HttpRequest) -> str:
    """The address the request came from: REMOTE_ADDR, or — only when FLIGHTDECK_TRUSTED_PROXIES says N
    reverse proxies stand in front — the N-th X-Forwarded-For entry from the right, the one the outermost
    trusted proxy appended. Entries further left are whatever the client chose to send and never used."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.FLIGHTDECK_TRUSTED_PROXIES
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            candidate = hops[-proxies]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                logger.warning("ignoring malformed X-Forwarded-For entry %r from the trusted proxy", candidate)
    return remote


# ------------------------------------------------------------------------------------------------ counters

def _redis() -> redis.Redis:
    return short_timeout_client(_SOCKET_TIMEOUT_SECONDS, retries=1)


def _key(scope: str, ident: str) -> str:
    # Hashed: usernames are arbitrary user input; the key stays short and printable whatever was typed.
    return f"{KEY_PREFIX}:{scope}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"


def _run(calls: Callable[[], T]) -> T:
    try:
        return calls()
    except redis.RedisError as error:
        raise Unavailable(str(error)) from error


def hit(scope: str, ident: str, rate: Rate) -> Count:
    """Count one hit against `ident`'s window in `scope` (atomic across processes)."""
    key = _key(scope, ident)

    def calls() -> list:
        with _redis().pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, rate.window_seconds, nx=True)  # the first hit opens the window
            pipe.ttl(key)
            return pipe.execute()

    value, _, ttl = _run(calls)
    return Count(value=value, limit=rate.limit, retry_after=max(ttl, 1))


def peek(scope: str, ident: str, rate: Rate) -> Count:
    """The counter as it stands, without counting a hit."""
    key = _key(scope, ident)

    def calls() -> list:
        with _redis().pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            return pipe.execute()

    value, ttl = _run(calls)
    return Count(value=int(value or 0), limit=rate.limit, retry_after=max(ttl, 1))


def clear(scope: str, ident: str) -> None:
    _run(lambda: _redis().delete(_key(scope, ident)))


# ------------------------------------------------------------------------------------------------- sign-in

LOGIN_USERNAME = "login-username"
LOGIN_IP = "login-ip"


def _username_ident(username: str) -> str:
    """The identity authentication will check, normalised exactly as the sign-in form does it (stripped,
    then NFKC: ``ｚara`` and ``ᶻara`` are ``zara``), then casefolded: no spelling buys a fresh budget."""
    return UsernameField().to_python(username).casefold()


def login_retry_after(*, username: str, ip: str) -> int:
    """Seconds until this username or address may try again; 0 when sign-in may be attempted now.

    Only failed attempts count (see `login_failed`); under a burst of concurrent guesses a window can take
    a few more than its limit (one per request in flight), which the password hasher's cost keeps small."""
    counts = [peek(LOGIN_USERNAME, _username_ident(username), configured_rate("login_username")),
              peek(LOGIN_IP, ip, configured_rate("login_ip"))]
    return max((count.retry_after for count in counts if count.exhausted), default=0)


def login_failed(*, username: str, ip: str) -> int:
    """Count a failed sign-in; returns the lockout in seconds if this failure used up a limit, else 0."""
    counts = [hit(LOGIN_USERNAME, _username_ident(username), configured_rate("login_username")),
              hit(LOGIN_IP, ip, configured_rate("login_ip"))]
    return max((count.retry_after for count in counts if count.exhausted), default=0)


def login_succeeded(*, username: str) -> None:
    """The owner got in: their username's failures are forgotten. The address's are not — otherwise one
    valid account would let an attacker reset the per-address budget between guesses."""
    clear(LOGIN_USERNAME, _username_ident(username))


# ------------------------------------------------------------------------------------------ password reset

PASSWORD_RESET_EMAIL = "password-reset-email"
PASSWORD_RESET_IP = "password-reset-ip"


def password_reset_hit(*, email: str, ip: str) -> int:
    """Count one reset request (each may send an email); the lockout in seconds once a limit is used up,
    else 0. Counted whether or not the address has an account, so the answer says nothing about that."""
    counts = [hit(PASSWORD_RESET_EMAIL, email.strip().casefold(), configured_rate("password_reset_email")),
              hit(PASSWORD_RESET_IP, ip, configured_rate("password_reset_ip"))]
    return max((count.retry_after for count in counts if count.exceeded), default=0)


# ---------------------------------------------------------------------------------------------------- API

API_USER = "api-user"
API_ANON = "api-anon"


class ApiRateThrottle(BaseThrottle):
    """DRF throttle: per user when authenticated (all of a user's tokens and sessions share one budget, so
    minting more tokens buys nothing), per client address otherwise. Fails open, see the module docstring."""

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.user.is_authenticated:
            scope, ident, rate = API_USER, str(request.user.pk), configured_rate("api_user")
        else:
            scope, ident, rate = API_ANON, client_ip(request), configured_rate("api_anon")
        try:
            count = hit(scope, ident, rate)
        except Unavailable as error:
            logger.warning("API rate limit not enforced, Redis unavailable: %s", error)
            return True
        self.retry_after = count.retry_after
        return not count.exceeded

    def wait(self) -> float | None:
        return self.retry_after
