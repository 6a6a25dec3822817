"""Outgoing webhooks: the signature, the address check and the POST itself (no database here).

Each delivery is a JSON POST with three headers: ``X-Flightdeck-Event`` (the kind), ``X-Flightdeck-Delivery``
(the delivery's id, the same on every retry) and ``X-Flightdeck-Signature: t=<unix time>,v1=<hex>`` where
``<hex>`` is HMAC-SHA256 over ``"<t>.<body>"`` with the webhook's secret. A receiver recomputes it and
rejects old timestamps, so a captured request cannot be replayed later (``verify`` is the reference).

Addresses are checked when the webhook is saved (scheme, host) and again, resolved, before every POST: private,
loopback, link-local and other non-public addresses are refused unless ``FLIGHTDECK_WEBHOOK_ALLOW_PRIVATE``,
so a webhook cannot be used to reach the worker's own network.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

TIMEOUT_SECONDS = 10.0
# Worth another try later; any other answer means the receiver refuses this request as it is.
RETRY_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
SIGNATURE_TOLERANCE_SECONDS = 300


class RefusedAddress(ValueError):
    """The URL may not be posted to; the message says why."""


def check_url(url: str) -> str:
    """The URL, stripped, if it can be a webhook (http or https, a host, no credentials); RefusedAddress else."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RefusedAddress(f"a webhook URL starts with https:// (or http://), got {url[:80]!r}")
    if not parts.hostname:
        raise RefusedAddress(f"a webhook URL needs a host, got {url[:80]!r}")
    if parts.username or parts.password:
        raise RefusedAddress("a webhook URL may not carry a user name or password; use the signing secret")
    return url


def check_destination(url: str) -> None:
    """Resolve the URL's host and refuse it when any address is not public (unless allowed by setting)."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise RefusedAddress(f"cannot resolve {host!r}: {error}") from None
    if getattr(settings, "FLIGHTDECK_WEBHOOK_ALLOW_PRIVATE", False):
        return
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise RefusedAddress(f"{host} resolves to {address}, which is not a public address")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, now: float | None = None) -> bool:
    """What a receiver does: the header matches the body and is at most five minutes old."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retry: bool  # worth trying again later
    code: int | None
    error: str


def post(*, url: str, secret: str, kind: str, delivery_id: int, payload: dict[str, Any]) -> Outcome:
    """POST the payload once; never raises for the receiver's or the network's failures."""
    try:
        check_destination(url)
    except RefusedAddress as refused:
        return Outcome(delivered=False, retry=False, code=None, error=str(refused))
    body = encode(payload)
    headers = {"Content-Type": "application/json", "User-Agent": "Flightdeck-Webhook/1",
               "X-Flightdeck-Event": kind, "X-Flightdeck-Delivery": str(delivery_id),
               "X-Flightdeck-Signature": signature(secret, int(time.time()), body)}
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_SECONDS, follow_redirects=False)
    except httpx.HTTPError as error:
        return Outcome(delivered=False, retry=True, code=None, error=f"{type(error).__name__}: {error}"[:300])
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(delivered=True, retry=False, code=code, error="")
    return Outcome(delivered=False, retry=code in RETRY_CODES, code=code, error=f"HTTP {code}")
