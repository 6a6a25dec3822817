"""Real Celery worker and beat processes pointed at pytest-django's test database and the test Redis."""
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import kombu.exceptions
import redis

from tests.support.processes import kill_group, log_tail, stop_group, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
_serial = itertools.count(1)


def database_url(settings_dict: dict) -> str:
    """DATABASE_URL for the database Django is connected to now (the test database, once it exists)."""
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    if engine == "django.db.backends.postgresql":
        credentials = quote(settings_dict["USER"], safe="")
        if settings_dict.get("PASSWORD"):
            credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{credentials}@{host}:{port}/{quote(settings_dict['NAME'], safe='')}"
    raise ValueError(f"no DATABASE_URL form for ENGINE {engine!r}; allowed: sqlite3, postgresql")


class CeleryProcess:
    """One `celery worker` or `celery beat` process group with its log file."""

    def __init__(self, command: list[str], *, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """Warm shutdown (SIGTERM lets running tasks finish), SIGKILL after a grace period."""
        stop_group(self.popen)

    def kill(self) -> None:
        """kill -9 of the worker and its pool children: unacknowledged messages stay in Redis."""
        kill_group(self.popen)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


class CeleryLauncher:
    """Starts worker and beat processes for one test and stops every one of them afterwards."""

    def __init__(self, *, database_url: str, log_dir: Path) -> None:
        self.database_url = database_url
        self.log_dir = log_dir
        self.started: list[CeleryProcess] = []

    def worker(self, *, queues: Sequence[str] = ("default", "gpu"), concurrency: int = 2, pool: str = "prefork",
               extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
               ready_timeout: float = 60) -> CeleryProcess:
        """Start a worker and return once it answers `inspect ping` under its unique node name."""
        name = f"test-worker-{os.getpid()}-{next(_serial)}@{socket.gethostname()}"
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-n", name, "-Q", ",".join(queues),
                   f"--concurrency={concurrency}", f"--pool={pool}", "--loglevel=INFO",
                   # Gossip, mingle and heartbeats only slow the start down; the tests talk to one node.
                   "--without-gossip", "--without-mingle", "--without-heartbeat", *extra_args]
        return self.worker_from_command(command, node=name, env=env, ready_timeout=ready_timeout)

    def worker_from_command(self, command: Sequence[str], *, node: str, env: dict[str, str] | None = None,
                            ready_timeout: float = 60) -> CeleryProcess:
        """Start a worker with a command line of your own (e.g. a deployment script such as
        platform/add-gpu-host) and return once node ``node`` answers `inspect ping`."""
        process = self._start(list(command), name=node, env=env)
        wait_until(lambda: _answers_ping(node), timeout=ready_timeout, what=f"celery worker {node}",
                   alive=process.is_running, log=process.log_path)
        return process

    def beat(self, *, extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> CeleryProcess:
        """Start beat with a private schedule file, waking at least once a second."""
        name = f"test-beat-{next(_serial)}"
        command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO", "--max-interval=1",
                   f"--schedule={self.log_dir / (name + '-schedule')}", *extra_args]
        return self._start(command, name=name, env=env)

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()
        self.started.clear()

    def _start(self, command: list[str], *, name: str, env: dict[str, str] | None) -> CeleryProcess:
        full_env = {**os.environ, "DATABASE_URL": self.database_url, "PYTHONUNBUFFERED": "1", **(env or {})}
        log_path = self.log_dir / f"{name.split('@')[0]}.log"
        process = CeleryProcess(command, name=name, env=full_env, log_path=log_path)
        self.started.append(process)
        return process


def _answers_ping(node_name: str) -> bool:
    from config import celery_app

    try:
        return bool(celery_app.control.ping(destination=[node_name], timeout=0.5))
    except (OSError, redis.ConnectionError, kombu.exceptions.OperationalError):
        # A pooled broker connection that predates a Redis restart fails once, then reconnects.
        return False


class SharedWorker:
    """The session's default worker, started on first use and stopped while a test runs its own processes.

    Between the tests that use it the worker consumes nothing: every test's commits send messages to the session's
    Redis, and a worker left consuming would write into the database while a test that never asked for it is
    flushed (TRUNCATE fails on the locks it holds)."""

    QUEUES = ("default", "gpu")

    def __init__(self, launcher: CeleryLauncher) -> None:
        self._launcher = launcher
        self._process: CeleryProcess | None = None
        self._parked = False

    def get(self) -> CeleryProcess:
        if self._parked and self._process is not None and not _consume(self._process.name, self.QUEUES, start=True):
            self.stop()  # it would not consume again: a fresh one will
        self._parked = False
        if self._process is None or not self._process.is_running():
            self._process = self._launcher.worker(queues=self.QUEUES)
        return self._process

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def settle(self, *, timeout: float = 60) -> None:
        """Stop consuming, then wait until the worker runs and holds no task, so nothing it still writes (a
        supervisor closing a cancelled attempt, a study's finishing notice) races the test database's flush.
        A worker that does not settle in time is stopped; the next test starts a fresh one."""
        if self._process is None or not self._process.is_running():
            return
        node = self._process.name
        if not _consume(node, self.QUEUES, start=False):
            self.stop()
            return
        self._parked = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _runs_nothing(node):
                return
            time.sleep(0.2)
        self.stop()


def _consume(node_name: str, queues: Sequence[str], *, start: bool) -> bool:
    """Start or stop consuming ``queues`` on one worker; False when it did not confirm every queue."""
    from config import celery_app

    control = celery_app.control.add_consumer if start else celery_app.control.cancel_consumer
    try:
        replies = [control(queue, destination=[node_name], reply=True, timeout=2) for queue in queues]
    except (OSError, redis.ConnectionError, kombu.exceptions.OperationalError):
        return False
    return all(len(reply) == 1 and "ok" in reply[0].get(node_name, {}) for reply in replies)


def _runs_nothing(node_name: str) -> bool:
    from config import celery_app

    inspect = celery_app.control.inspect(destination=[node_name], timeout=1)
    try:
        active, reserved = inspect.active(), inspect.reserved()
    except (OSError, redis.ConnectionError, kombu.exceptions.OperationalError):
        return False
    return active is not None and reserved is not None and not active.get(node_name) and not reserved.get(node_name)
