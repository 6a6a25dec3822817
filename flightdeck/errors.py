"""Typed errors of the Flightdeck client. Every one carries a one-line ``message`` fit to show a person: the
API's own words where the server answered, what went wrong on the way where it did not."""
from __future__ import annotations

from typing import Any


class FlightdeckError(Exception):
    """Anything the client could not do. ``str(error)`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(FlightdeckError):
    """No server URL or token, or a config file that cannot be read."""


class ServerUnreachable(FlightdeckError):
    """The server did not answer: refused connection, unknown host, timeout."""


class ApiError(FlightdeckError):
    """The server answered with an error status. ``body`` is the decoded JSON answer (or None)."""

    status: int = 0

    def __init__(self, message: str, *, status: int, body: Any = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.url = url


class BadRequest(ApiError):
    """400: the input was refused; ``field_errors`` maps each offending field to its messages."""

    @property
    def field_errors(self) -> dict[str, list[str]]:
        if not isinstance(self.body, dict):
            return {}
        return {field: _messages(value) for field, value in self.body.items() if field != "detail"}


class Unauthorized(ApiError):
    """401: no token, an unknown, revoked or expired one."""


class Forbidden(ApiError):
    """403: signed in, but not allowed to do this."""


class NotFound(ApiError):
    """404: no such object, or one this user may not see (the API answers both alike)."""


class Conflict(ApiError):
    """409: not possible in the current state (illegal transition, run not live, cycle not open...)."""


class PatchConflict(Conflict):
    """409 on a study launch: ideas set one key to different values. ``conflicts``: [{key, values}]."""

    @property
    def conflicts(self) -> list[dict[str, Any]]:
        return list(self.body.get("conflicts", [])) if isinstance(self.body, dict) else []


class BudgetRefused(Conflict):
    """409 on a study launch: the estimate exceeds what is left of the grant (``requested``, ``remaining``)."""

    @property
    def requested(self) -> Any:
        return self.body.get("requested") if isinstance(self.body, dict) else None

    @property
    def remaining(self) -> Any:
        return self.body.get("remaining") if isinstance(self.body, dict) else None


class RateLimited(ApiError):
    """429 after the client's retries ran out; ``retry_after`` in seconds when the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the server failed (or was unavailable after the retries)."""


_BY_STATUS: dict[int, type[ApiError]] = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
                                         409: Conflict, 429: RateLimited}


def _messages(value: Any) -> list[str]:
    if isinstance(value, list):
        return [message for item in value for message in _messages(item)]
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, item in value.items() for message in _messages(item)]
    return [str(value)]


def describe(status: int, body: Any, url: str = "") -> str:
    """One line from an error answer: ``detail`` if there is one, else ``field: message; field: message``;
    the status and URL when the answer is not the API's JSON (a proxy's page, an endpoint this server lacks)."""
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str) and body["detail"]:
            return " ".join(body["detail"].split())
        parts = [f"{field}: {message}" for field, value in body.items() for message in _messages(value)]
        if parts:
            return " ".join("; ".join(parts).split())
    if isinstance(body, list) and body:
        return " ".join("; ".join(_messages(body)).split())
    return f"the server answered HTTP {status} for {url}" if url else f"the server answered HTTP {status}"


def error_for(status: int, body: Any, *, url: str, retry_after: float | None = None) -> ApiError:
    """The typed error for an error answer."""
    message = describe(status, body, url)
    if status == 409 and isinstance(body, dict):
        if "conflicts" in body:
            return PatchConflict(message, status=status, body=body, url=url)
        if "requested" in body and "remaining" in body:
            return BudgetRefused(message, status=status, body=body, url=url)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, status=status, body=body, url=url)
    if status >= 500:
        return ServerError(message, status=status, body=body, url=url)
    return _BY_STATUS.get(status, ApiError)(message, status=status, body=body, url=url)
