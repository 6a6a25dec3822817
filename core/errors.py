"""The one family of errors that services raise for "well-formed, but not possible": each app derives its own
(``IllegalTransition``, ``ComputeConflict``, ``RunStateConflict``, ...) and the API answers every one of them
the same way (``core.api.exception_handler``): ``status_code`` with ``{"detail": message, **details}``.

Bad fields stay django's ``ValidationError`` keyed by field name (→ 400); permissions stay django's
``PermissionDenied`` (→ 403).
"""
from typing import Any


class ApplicationError(Exception):
    """``details`` are machine-readable facts for clients (what is allowed, what is left); the message is for
    people and names the field or value at fault."""

    status_code = 409

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
