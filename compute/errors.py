"""Typed errors raised by compute services; views answer them with 409 Conflict, the API through
``core.api.exception_handler``.

Permission problems raise django's ``PermissionDenied`` (→ 403); bad fields raise django's
``ValidationError`` keyed by field name (→ 400).
"""
from decimal import Decimal
from typing import Any

from core.errors import ApplicationError


class ComputeConflict(ApplicationError):
    """The input is well-formed but the current state forbids it; ``details`` are machine-readable facts."""


class CycleNotOpen(ComputeConflict):
    """Requests are accepted only while a cycle is ``open``; the message says when the next one opens."""


class CycleClosed(ComputeConflict):
    """Grants of a closed cycle are history and cannot change."""


class ParentOverdrawn(ComputeConflict):
    """A grant would take more than its parent has left; ``details["parent_remaining"]`` says how much is left."""

    def __init__(self, message: str, *, parent_remaining: Decimal, **details: Any):
        super().__init__(message, parent_remaining=parent_remaining, **details)
        self.parent_remaining = parent_remaining


class BelowChildren(ComputeConflict):
    """A grant cannot shrink below what it already handed on to its children."""


class AlreadyDecided(ComputeConflict):
    """A request is reviewed once; submit a new one to ask again."""


class RequestAlreadyOpen(ComputeConflict):
    """The area or idea already has an open request in that pool this cycle; ``details``: ``request`` (its id)
    and ``can_amend`` (whether the caller may amend it instead)."""
