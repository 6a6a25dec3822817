"""Where a trainer process runs. Every backend starts a :class:`~experiments.execution.launcher.TrainerLaunch`
and returns a handle the supervisor polls, terminates (graceful: the trainer checkpoints) or kills.

- ``local``: a child process of this worker, in its own process group, on a leased slot of this host;
- ``slurm``: a job submitted with submitit (``FLIGHTDECK_SLURM["executor"] = "local"`` runs it with
  submitit's LocalExecutor, for tests and laptops).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from experiments.execution.launcher import TrainerLaunch
from experiments.models import Attempt, Backend


class TrainerHandle(Protocol):
    pid: int | None
    pgid: int | None
    external_id: str

    def poll(self) -> int | None:
        """The trainer's exit code once it ended, else None."""

    def terminate(self) -> None:
        """Ask the trainer to checkpoint and stop (SIGTERM)."""

    def kill(self) -> None:
        """Stop it and everything it started, now."""

    def failure_reason(self) -> str:
        """Why the backend (not the trainer) failed, or ""."""

    def interruption(self) -> str:
        """Why the backend stopped the trainer in a way the run resumes from (a requeued or timed-out job,
        a lost node), or ""."""


@dataclass(frozen=True)
class UsageSegment:
    """Time an attempt held ``devices`` as the backend's own accounting measured it."""

    start: datetime
    end: datetime
    devices: int


class TrainerBackend(Protocol):
    needs_slot: bool  # True: the attempt must lease a device slot of this host first

    def devices(self) -> int:
        """Devices one attempt holds (GPU-hours = devices × wall hours)."""

    def start(self, launch: TrainerLaunch) -> TrainerHandle: ...

    def stop_lost(self, attempt: Attempt, *, host: str) -> None:
        """Reconciler: stop whatever still runs for an attempt whose worker stopped heartbeating."""

    def usage(self, attempt: Attempt, *, now: datetime) -> list[UsageSegment] | None:
        """The attempt's device time as the backend accounted it (up to ``now``), or None: charge the
        worker's clock (started → last heartbeat/finish, × the devices claimed)."""


def backend_for(name: str) -> TrainerBackend:
    """The backend called ``name``; raises ValueError naming the allowed ones."""
    if name == Backend.LOCAL:
        from experiments.execution.backends.local import LocalBackend

        return LocalBackend()
    if name == Backend.SLURM:
        from experiments.execution.backends.slurm import SlurmBackend

        return SlurmBackend()
    raise ValueError(f"unknown backend {name!r}; allowed: {', '.join(Backend.values)}")
