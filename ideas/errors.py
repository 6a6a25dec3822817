"""Typed errors raised by ideas services. Views map them to HTTP: IllegalTransition → 409 (an
``ApplicationError``; its details are ``from_status``, ``to_status`` and ``allowed``).

Permission problems raise django's ``PermissionDenied`` (→ 403) and bad fields raise django's
``ValidationError`` with a dict keyed by field name (→ 400 / form errors).
"""
from core.errors import ApplicationError


class IllegalTransition(ApplicationError):
    """The lifecycle does not allow this move; ``allowed`` lists where the idea may go instead."""

    def __init__(self, from_status: str, to_status: str, allowed: tuple[str, ...]):
        self.from_status = from_status
        self.to_status = to_status
        self.allowed = list(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (final state)"
        super().__init__(f"cannot move from {from_status!r} to {to_status!r}; allowed: {allowed_text}",
                         from_status=from_status, to_status=to_status, allowed=self.allowed)
