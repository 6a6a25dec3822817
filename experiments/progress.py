"""How far a study is and when it will end. The ETA counts the runs still queued, not only the running ones:
taking the longest running run's ETA alone said "ETA 9s" with six of ten runs still waiting for a slot."""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from experiments.models import LIVE_STATES, Run, RunStatus


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    fraction: float
    eta_seconds: float | None  # None: not estimable yet (no run has measured its speed)
    queued: int = 0


def run_seconds(run: Run) -> float | None:
    """A whole run's training time at its measured speed (tokens/s over its tokens per step)."""
    if not (run.tokens_per_s and run.step and run.tokens):
        return None
    return run.max_steps * (run.tokens / run.step) / run.tokens_per_s


def study_progress(runs: Sequence[Run]) -> Progress:
    """Done / total, mean progress, and the ETA: queued runs start as running ones end (the runs running now are
    taken as the parallelism available), each taking as long as the study's measured runs take."""
    finished = sum(run.status not in (*LIVE_STATES, RunStatus.PREEMPTED) for run in runs)
    fraction = sum(run.progress for run in runs) / len(runs) if runs else 0.0
    running = [run for run in runs if run.status in (RunStatus.STARTING, RunStatus.RUNNING)]
    waiting = [run for run in runs if run.status in (RunStatus.QUEUED, RunStatus.PREEMPTED)]
    running_etas = [run.eta_seconds for run in running if run.eta_seconds is not None]
    durations = [seconds for run in runs if (seconds := run_seconds(run)) is not None]
    eta: float | None = max(running_etas) if running_etas else None
    if waiting:
        if not durations:
            eta = None  # nothing measured: any number would be a guess
        else:
            rounds = math.ceil(len(waiting) / max(1, len(running)))
            # The first queued runs start when the soonest running ones end.
            start = min(running_etas) if running_etas else 0.0
            eta = max(eta or 0.0, start + rounds * statistics.median(durations))
    return Progress(finished, len(runs), fraction, eta, len(waiting))
