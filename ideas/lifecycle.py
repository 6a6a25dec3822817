"""The idea lifecycle: every status and every allowed move, in one table.

    submitted → triaged → in_ablation → in_integration → landed
    any open state → rejected | parked;   parked → triaged
"""
from django.db import models


class Status(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    TRIAGED = "triaged", "Triaged"
    IN_ABLATION = "in_ablation", "In ablation"
    IN_INTEGRATION = "in_integration", "In integration"
    LANDED = "landed", "Landed"
    REJECTED = "rejected", "Rejected"
    PARKED = "parked", "Parked"


OPEN_STATES: tuple[str, ...] = (Status.SUBMITTED, Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION)

_FORWARD: dict[str, str] = {
    Status.SUBMITTED: Status.TRIAGED,
    Status.TRIAGED: Status.IN_ABLATION,
    Status.IN_ABLATION: Status.IN_INTEGRATION,
    Status.IN_INTEGRATION: Status.LANDED,
}

TRANSITIONS: dict[str, tuple[str, ...]] = {
    **{state: (_FORWARD[state], Status.REJECTED, Status.PARKED) for state in OPEN_STATES},
    Status.PARKED: (Status.TRIAGED,),
    Status.LANDED: (),
    Status.REJECTED: (),
}

# Closing an idea either way must say what the evidence showed.
DECISION_REQUIRED: frozenset[str] = frozenset({Status.LANDED, Status.REJECTED})

# Board columns, left to right.
BOARD_COLUMNS: tuple[str, ...] = (*OPEN_STATES, Status.LANDED, Status.PARKED, Status.REJECTED)


def forward_path(from_status: str, to_status: str) -> list[str]:
    """The statuses an idea passes moving forward from ``from_status`` to ``to_status`` (``to_status`` last);
    [] when it is already there, beyond it, or closed (landed, rejected, parked)."""
    path, status = [], from_status
    while status in _FORWARD and status != to_status:
        status = _FORWARD[status]
        path.append(status)
    return path if path and path[-1] == to_status else []


def allowed_targets(status: str) -> tuple[str, ...]:
    """The statuses an idea in ``status`` may move to, in display order."""
    return TRANSITIONS[status]


def is_allowed(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, ())
