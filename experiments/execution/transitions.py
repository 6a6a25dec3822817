"""The attempt state machine: every state and every allowed move, in one table.

    queued ──claim──► starting ──spawned──► running ──► succeeded | failed | cancelled | preempted
       └──cancel──► cancelled        └──► failed | cancelled | preempted (never started, lease expired)

A final state is final: a preempted run continues in a *new* attempt. ``experiments.execution.attempts``
is the only writer of ``Attempt.state`` and asks :func:`check` before every write.
"""
from __future__ import annotations

from experiments.models import FINAL_STATES, RunStatus

S = RunStatus

TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.QUEUED: (S.STARTING, S.CANCELLED),
    S.STARTING: (S.RUNNING, S.FAILED, S.CANCELLED, S.PREEMPTED),
    S.RUNNING: (S.SUCCEEDED, S.FAILED, S.CANCELLED, S.PREEMPTED),
    **{state: () for state in FINAL_STATES},
}

# Where a worker holds the attempt (a lease to renew, a trainer to stop).
ACTIVE_STATES: tuple[str, ...] = (S.STARTING, S.RUNNING)


class IllegalTransition(Exception):
    """An attempt was asked to move where the table does not allow (a bug or a lost race, never user input)."""

    def __init__(self, attempt_id: int, from_state: str, to_state: str):
        self.attempt_id, self.from_state, self.to_state = attempt_id, from_state, to_state
        allowed = ", ".join(TRANSITIONS.get(from_state, ())) or "nothing (it is final)"
        super().__init__(f"attempt {attempt_id} cannot go from {from_state} to {to_state}; allowed: {allowed}")


def is_allowed(from_state: str, to_state: str) -> bool:
    return to_state in TRANSITIONS.get(from_state, ())


def check(attempt_id: int, from_state: str, to_state: str) -> None:
    """Raise :class:`IllegalTransition` unless ``from_state → to_state`` is in the table."""
    if not is_allowed(from_state, to_state):
        raise IllegalTransition(attempt_id, from_state, to_state)
