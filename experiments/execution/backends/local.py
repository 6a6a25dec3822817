"""The local backend: the trainer is a child of this worker, in its own process group (so cancel and
cleanup reach everything it started) and dies with the worker (parent-death signal via procguard)."""
from __future__ import annotations

import os
import signal
import subprocess
from datetime import datetime

from experiments.execution import orphans, procguard
from experiments.execution.backends import UsageSegment
from experiments.execution.launcher import TrainerLaunch
from experiments.models import Attempt


class LocalProcess:
    external_id = ""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.pid = process.pid
        self.pgid = process.pid  # start_new_session: the trainer leads its own group

    def poll(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        signal_group(self.pgid, signal.SIGTERM)

    def kill(self) -> None:
        signal_group(self.pgid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait()

    def failure_reason(self) -> str:
        if self.process.returncode == procguard.PARENT_GONE_EXIT:
            return "the worker died while starting the trainer"
        return ""

    def interruption(self) -> str:
        return ""  # a local trainer is only ever stopped by Flightdeck itself


def signal_group(pgid: int | None, signum: int) -> bool:
    """Signal a whole process group; False when it no longer exists."""
    if not pgid:
        return False
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


class LocalBackend:
    needs_slot = True

    def devices(self) -> int:
        return 1

    def start(self, launch: TrainerLaunch) -> LocalProcess:
        with launch.log_path.open("ab") as log:
            process = subprocess.Popen(
                procguard.wrap(launch.command),
                cwd=launch.cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return LocalProcess(process)

    def stop_lost(self, attempt: Attempt, *, host: str) -> None:
        # By the attempt id in the processes' environment, not the stored pgid, which may be reused by now.
        if attempt.host == host:
            orphans.kill_attempt(attempt.pk)

    def usage(self, attempt: Attempt, *, now: datetime) -> list[UsageSegment] | None:
        return None  # the worker's clock is the only one: charge started → heartbeat × the slot
