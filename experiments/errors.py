"""Typed errors raised by experiments services; all are ``core.errors.ApplicationError``s, which the API answers
with their status code and details (``core.api.exception_handler``).

- ``experiments.composition.ConflictError`` (ideas set one key to different values) → 409, ``.conflicts``
  lists them (each has ``to_dict()``: key and the (idea, value) pairs);
- :class:`RunStateConflict` (cancel a finished run, resume a live one) → 409;
- django ``ValidationError`` with a dict keyed by field name (``baseline``, ``ideas``, ``seeds``,
  ``max_steps``, ``resolutions``, ...) → 400; every message names the offending key or value;
- django ``PermissionDenied`` → 403.
"""
from core.errors import ApplicationError
from experiments.composition import ConflictError

__all__ = ["ConflictError", "RunStateConflict"]


class RunStateConflict(ApplicationError):
    """The run's state does not allow the action (e.g. cancelling a run that already finished)."""

    def __init__(self, run_public_id: str, status: str, action: str, *, detail: str = ""):
        self.run_public_id = run_public_id
        self.status = status
        self.action = action
        super().__init__(f"cannot {action} run {run_public_id}: {detail or f'it is {status}'}", status=status)
