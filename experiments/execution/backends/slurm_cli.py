"""What the Slurm cluster says about a job, read with its own client commands (no Django, no submitit).

- :func:`job_status`: the controller's live view (`scontrol show job`), falling back to the accounting
  database (`sacct`) once the controller has forgotten the job (``MinJobAge``);
- :func:`job_segments`: every incarnation of a job as accounted by `sacct` (a requeued job has several),
  with its elapsed seconds and allocated TRES — the numbers the compute ledger is charged from.

A command that fails or times out answers None: the cluster being briefly unreachable must not end a run.
"""
from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 30
# Job states after which nothing runs for the job any more (`man squeue`, JOB STATE CODES).
FINAL_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "TIMEOUT", "SPECIAL_EXIT", "REVOKED",
})
# The job waits for (another) start: nothing of it runs now.
WAITING_STATES = frozenset({"PENDING", "REQUEUE_HOLD", "SUSPENDED", "RESV_DEL_HOLD"})


@dataclass(frozen=True)
class JobStatus:
    state: str  # a Slurm job state code, e.g. RUNNING, PENDING, COMPLETED, NODE_FAIL
    restarts: int  # how often Slurm requeued the job (scontrol requeue, preemption, a failed node)
    reason: str = ""  # Slurm's reason for the state, e.g. "BeginTime" or "NodeDown"

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class JobSegment:
    """One incarnation of a job as accounted: it held ``tres`` from ``start`` for ``elapsed_s`` seconds."""

    start: datetime
    elapsed_s: int
    tres: dict[str, int]
    state: str

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed_s)


def job_status(job_id: str) -> JobStatus | None:
    """The job's state now; None when neither the controller nor the accounting database answers for it."""
    shown = _run("scontrol", "show", "job", "--oneliner", job_id)
    if shown:
        fields = _key_values(shown)
        if "JobState" in fields:
            return JobStatus(state=fields["JobState"], restarts=int(fields.get("Restarts", "0") or 0),
                             reason=fields.get("Reason", "") if fields.get("Reason") != "None" else "")
    accounted = _run("sacct", "--noheader", "--parsable2", "--allocations", "--duplicates", "--jobs", job_id,
                     "--format", "State")
    if not accounted:
        return None
    states = [line.split()[0] for line in accounted.splitlines() if line.strip()]
    # With --duplicates every incarnation has a line, the current one last; more than one means requeued.
    return JobStatus(state=states[-1], restarts=len(states) - 1) if states else None


def job_segments(job_id: str) -> list[JobSegment] | None:
    """Every incarnation of the job that started, oldest first; None when `sacct` does not answer."""
    out = _run("sacct", "--noheader", "--parsable2", "--allocations", "--duplicates", "--jobs", job_id,
               "--format", "Start,ElapsedRaw,AllocTRES,State", time_format="%s")
    if out is None:
        return None
    segments = []
    for line in out.splitlines():
        start, elapsed, tres, state = (line.split("|") + ["", "", "", ""])[:4]
        if not start.isdigit():  # "Unknown"/"None": this incarnation never started
            continue
        segments.append(JobSegment(start=datetime.fromtimestamp(int(start), tz=timezone.utc),
                                   elapsed_s=int(elapsed or 0), tres=parse_tres(tres),
                                   state=state.split()[0] if state else ""))
    return segments


def parse_tres(text: str) -> dict[str, int]:
    """``"billing=2,cpu=2,gres/gpu=1,mem=8G,node=1"`` → counts by TRES name (memory in whatever unit it came)."""
    counts = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        digits = "".join(ch for ch in value if ch.isdigit() or ch == ".")
        if digits:
            counts[name] = int(float(digits))
    return counts


def cancel(job_id: str) -> None:
    _run("scancel", job_id)


def _key_values(text: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in text.split() if "=" in token)


def _run(*args: str, time_format: str | None = None) -> str | None:
    env = dict(os.environ)
    if time_format:
        env["SLURM_TIME_FORMAT"] = time_format
    try:
        result = subprocess.run(list(args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, env=env)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("%s: %s", " ".join(args), error)
        return None
    if result.returncode != 0:
        log.info("%s exited %s: %s", " ".join(args), result.returncode, result.stderr.strip()[:200])
        return None
    return result.stdout
