"""HTTP to the Flightdeck API: bearer token, JSON in and out, retries, and typed errors.

Retries (at most ``max_retries`` more tries):
- 429 and 503 are retried after the server's ``Retry-After`` (seconds or an HTTP date), or after an
  exponential back-off when it gives none; a wait longer than ``max_retry_wait`` is not sat out: the error is
  raised at once, with ``retry_after`` on it.
- A refused connection is retried for every method: the request never reached the server.
- Other network failures (timeouts, a dropped connection) are retried only for reads and for writes sent
  with an ``Idempotency-Key``, which the server recognises on the second delivery; any other write could
  have happened already, so its failure is raised.
"""
from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from flightdeck import __version__
from flightdeck.errors import ApiError, FlightdeckError, RateLimited, ServerUnreachable, error_for

API_PREFIX = "/api/v1/"
RETRIED_STATUSES = frozenset({429, 503})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def api_root(url: str) -> str:
    """The API's base URL from what a person typed: ``host:8000``, ``http://host/`` or ``http://host/api/v1``."""
    url = url.strip()
    if not url:
        raise FlightdeckError("the server URL is empty")
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FlightdeckError(f"not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(API_PREFIX.rstrip("/")):
        path += API_PREFIX.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}/"


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait (never negative), or None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class Transport:
    """One HTTP connection pool to one server, authenticated with one token."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, max_retries: int = 4,
                 max_retry_wait: float = 60.0, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.root = api_root(url)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self._sleep = sleep
        headers = {"Accept": "application/json", "User-Agent": f"flightdeck-client/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.root, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                headers: Mapping[str, str] | None = None) -> Any:
        """Send one API request (retried as the module says) and return the decoded JSON answer."""
        method = method.upper()
        replayable = method in SAFE_METHODS or bool(headers and "Idempotency-Key" in headers)
        query = _query(params)
        for attempt in range(self.max_retries + 1):
            last_try = attempt == self.max_retries
            try:
                response = self._http.request(method, path.lstrip("/"), params=query, json=json, headers=headers)
            except httpx.ConnectError as error:
                if last_try:
                    raise ServerUnreachable(f"cannot reach the Flightdeck server at {self.root} ({_reason(error)})") from None
                self._sleep(self._backoff(attempt))
                continue
            except httpx.TransportError as error:
                if last_try or not replayable:
                    raise ServerUnreachable(
                        f"no answer from the Flightdeck server at {self.root} ({_reason(error)})") from None
                self._sleep(self._backoff(attempt))
                continue
            if response.status_code in RETRIED_STATUSES:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if not last_try and (wait is None or wait <= self.max_retry_wait):
                    self._sleep(self._backoff(attempt) if wait is None else wait)
                    continue
                raise self._error(response, retry_after=wait)
            if response.status_code >= 400:
                raise self._error(response)
            return _decoded(response)
        raise AssertionError("unreachable: the last try returns or raises")

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list (``{count, next, results}``), fetching pages as they are consumed.
        ``next`` is followed by its query only, on this client's own URL, so a proxy that rewrites hosts
        cannot send the token elsewhere."""
        query = dict(_query(params))
        while True:
            answer = self.request("GET", path, params=query)
            if isinstance(answer, list):  # an unpaginated list
                yield from answer
                return
            yield from answer.get("results", [])
            if not answer.get("next"):
                return
            query = dict(parse_qsl(urlsplit(answer["next"]).query, keep_blank_values=True))

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff * 2**attempt, 10.0)

    def _error(self, response: httpx.Response, *, retry_after: float | None = None) -> ApiError:
        body = _json_or_none(response)
        error = error_for(response.status_code, body, url=str(response.request.url), retry_after=retry_after)
        if isinstance(error, RateLimited) and retry_after is not None:
            error.message = f"{error.message} (retry after {retry_after:.0f} s)"
            error.args = (error.message,)
        return error


def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Query parameters without the unset ones; lists become comma-separated, booleans true/false."""
    query: dict[str, str] = {}
    for name, value in (params or {}).items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        query[name] = str(value)
    return query


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _decoded(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    if "json" not in response.headers.get("Content-Type", ""):
        raise FlightdeckError(f"{response.request.url} answered {response.headers.get('Content-Type') or 'no content type'}, "
                              "not JSON: is the URL that of a Flightdeck server?")
    return response.json()


def _reason(error: httpx.TransportError) -> str:
    text = str(error) or type(error).__name__
    # "[Errno 111] Connection refused" → "connection refused"
    if "] " in text:
        text = text.split("] ", 1)[1]
    return text[:1].lower() + text[1:]
