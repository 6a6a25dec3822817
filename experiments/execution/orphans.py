"""Finding this deployment's trainer processes on this host by the attempt id in their environment, and
killing the ones no live attempt owns (their worker died, or a lease expired). Linux /proc only;
elsewhere finds nothing."""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from experiments.execution.launcher import ATTEMPT_ENV, DEPLOYMENT_ENV, HOST_ENV

PROC = Path("/proc")


@dataclass(frozen=True)
class TrainerProcess:
    pid: int
    pgid: int
    ppid: int
    attempt_id: int
    host: str


def _environ(pid_dir: Path) -> dict[str, str]:
    try:
        raw = (pid_dir / "environ").read_bytes()
    except OSError:  # gone, or not ours
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def trainer_processes() -> list[TrainerProcess]:
    """Every process started for an attempt of this deployment (children of trainers included)."""
    found = []
    deployment = str(settings.FLIGHTDECK_RUNS_DIR)
    for pid_dir in PROC.glob("[0-9]*"):
        env = _environ(pid_dir)
        if env.get(DEPLOYMENT_ENV) != deployment or not env.get(ATTEMPT_ENV, "").isdigit():
            continue
        pid = int(pid_dir.name)
        if pid == os.getpid():
            continue
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            continue
        found.append(TrainerProcess(pid=pid, pgid=pgid, ppid=parent_pid(pid) or 0, attempt_id=int(env[ATTEMPT_ENV]),
                                    host=env.get(HOST_ENV, "")))
    return found


def parent_pid(pid: int) -> int | None:
    try:
        # The command name in parentheses may contain spaces; the fields after it are fixed.
        return int((PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def kill_groups(processes: list[TrainerProcess]) -> int:
    """SIGKILL the process groups of ``processes``; returns how many groups were signalled."""
    killed = 0
    for pgid in {process.pgid for process in processes}:
        if pgid == os.getpgrp():  # never our own group (a trainer started by submitit shares the job's)
            continue
        try:
            os.killpg(pgid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def kill_attempt(attempt_id: int) -> int:
    """Kill whatever still runs on this host for one attempt."""
    return kill_groups([process for process in trainer_processes() if process.attempt_id == attempt_id])


def terminate_own_trainers() -> int:
    """SIGTERM the trainers this worker process started (directly, or from one of its pool processes), so
    they checkpoint and stop; returns how many. Trainers of other workers on the host are left alone."""
    me = os.getpid()
    own = {process.pgid for process in trainer_processes()
           if process.pid == process.pgid and me in (process.ppid, parent_pid(process.ppid))}
    for pgid in own:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return len(own)
