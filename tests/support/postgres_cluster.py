"""A throw-away PostgreSQL cluster (Debian's binaries) in a temp dir on a free loopback port.

PostgreSQL refuses to run as root, so under root the server runs as the `postgres` system user that the
Debian package creates. Durability is switched off: the cluster dies with the test session anyway.
`stop()`/`start()`/`restart()` keep the data directory and port, so fault drills can take the database
away from running workers and give it back; `remove()` ends the cluster for good.
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.processes import free_port

DB_USER = "flightdeck"
DB_NAME = "flightdeck"
_SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # Concurrency tests open one connection per thread (200 submissions from threads).
    "max_connections": "300",
}


def postgres_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql (apt install postgresql)")
    return Path(candidates[-1]).parent


class PostgresCluster:
    def __init__(self) -> None:
        # Its own top-level temp dir: the server user must be able to reach it, and a session temp dir is 0700.
        self.root = Path(tempfile.mkdtemp(prefix="flightdeck-pg-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.port = free_port()
        self.url = f"postgres://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"
        self._bin = postgres_bin_dir()
        # Only root has to hand the server to an unprivileged user.
        self._run_as = "postgres" if os.geteuid() == 0 else None

    def start(self) -> None:
        """Create the cluster and its database on first use; afterwards start the stopped server again."""
        if self.data_dir.exists():
            self._pg_ctl("start", "--log", str(self.log_path), "-o", self._server_options())
            return
        if self._run_as:
            account = pwd.getpwnam(self._run_as)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run("initdb", "--pgdata", str(self.data_dir), "--username", DB_USER, "--auth", "trust",
                  "--encoding", "UTF8", "--no-sync")
        self._pg_ctl("start", "--log", str(self.log_path), "-o", self._server_options())
        self._run("createdb", "--host", "127.0.0.1", "--port", str(self.port), "--username", DB_USER, DB_NAME)

    def stop(self) -> None:
        """Fast shutdown (open sessions are disconnected, as in a database failover); data and port are kept."""
        if self.is_running():
            self._pg_ctl("stop", "--mode", "fast")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every client connection breaks; returns once the server accepts new ones."""
        self._pg_ctl("restart", "--mode", "fast", "--log", str(self.log_path), "-o", self._server_options())

    def is_running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def remove(self) -> None:
        """End of the session: stop at once and delete the cluster."""
        if self.is_running():
            self._pg_ctl("stop", "--mode", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _server_options(self) -> str:
        options = " ".join(f"-c {key}={value}" for key, value in _SERVER_OPTIONS.items())
        return f"-p {self.port} -k {self.root} {options}"

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run("pg_ctl", action, "--wait", "--pgdata", str(self.data_dir), *args)

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run([str(self._bin / program), *args], cwd=self.root, user=self._run_as,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
