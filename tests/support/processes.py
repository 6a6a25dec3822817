"""Small helpers for the child processes the test suite owns (servers, Celery workers)."""
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(ready: Callable[[], bool], *, timeout: float, what: str, alive: Callable[[], bool],
               log: Path) -> None:
    """Poll `ready` until it holds; fail early with the log when the process died meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive():
            raise RuntimeError(f"{what} exited before it was ready; log tail:\n{log_tail(log)}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s; log tail:\n{log_tail(log)}")


def stop_group(popen: subprocess.Popen, *, grace: float = 10.0) -> None:
    """SIGTERM the process group (a prefork worker has children), then SIGKILL what is left."""
    if popen.poll() is None:
        _signal_group(popen, signal.SIGTERM)
        try:
            popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # The leader may be gone while pool children linger; the group kill reaches them too.
    _signal_group(popen, signal.SIGKILL)
    popen.wait()


def kill_group(popen: subprocess.Popen) -> None:
    """SIGKILL the whole process group at once, as a crashed machine would leave it; returns once all are dead."""
    _signal_group(popen, signal.SIGKILL)
    popen.wait()
    deadline = time.monotonic() + 10
    while live_group_members(popen.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def live_group_members(pgid: int) -> list[int]:
    """Pids in process group `pgid` that are not zombies (orphans may wait a while to be reaped)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name in parentheses may contain spaces; the fields after it are fixed.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        state, process_group = fields[0], int(fields[2])
        if process_group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _signal_group(popen: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        pass
