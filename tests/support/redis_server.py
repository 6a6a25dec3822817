"""A throw-away Redis started from platform/redis.conf on a free port, restartable for chaos tests."""
import subprocess
from pathlib import Path

import redis

from tests.support.processes import free_port, kill_group, stop_group, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_CONF = REPO_ROOT / "platform" / "redis.conf"
# Kombu keeps exchange→queue routing in these keys; deleting them would silently drop published tasks.
_KOMBU_BINDINGS = b"_kombu.binding."


class RedisServer:
    """One redis-server process; `restart()` keeps port and data directory, so AOF data survives."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = work_dir / "redis.log"
        self._popen: subprocess.Popen | None = None

    def start(self) -> None:
        # redis.conf's `dir ./var/redis` is relative to the working directory, as under `make run`.
        (self.work_dir / "var" / "redis").mkdir(parents=True, exist_ok=True)
        command = ["redis-server", str(REDIS_CONF), "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(command, cwd=self.work_dir, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        wait_until(self._answers_ping, timeout=15, what="redis-server", alive=self.is_running, log=self.log_path)

    def stop(self) -> None:
        """Graceful shutdown: Redis flushes its append-only file before it exits."""
        if self._popen is not None:
            stop_group(self._popen)

    def kill(self) -> None:
        """SIGKILL, as a crash would; up to a second of writes may be lost (appendfsync everysec)."""
        if self._popen is not None:
            kill_group(self._popen)

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2)

    def clear_broker_state(self) -> None:
        """Drop what earlier tests left (queued and unacknowledged messages, cached values); keep kombu's
        routing table, which running workers declared once at start-up."""
        with self.client() as client:
            stale = [key for key in client.scan_iter() if not key.startswith(_KOMBU_BINDINGS)]
            if stale:
                client.delete(*stale)

    def _answers_ping(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False
