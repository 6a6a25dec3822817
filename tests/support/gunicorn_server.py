"""Real gunicorn serving `config.wsgi` on a free loopback port, and a retry-free HTTP client that signs in
through the login form like a browser. Used by the web fault drills (tests/operations/) and by
benchmarks/mixed_load.py."""
from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from tests.support.gunicorn_hooks import READY_MESSAGE
from tests.support.processes import free_port, log_tail, stop_group, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
# As in platform/flightdeck.env.example, except FLIGHTDECK_ENV: production mode wants HTTPS (secure cookies,
# SSL redirect) and a collected manifest, which a loopback HTTP test server cannot offer.
PRODUCTION_LIKE_ENV = {"DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1,localhost", "DATABASE_CONN_MAX_AGE": "60"}
_READY_LINE = re.compile(re.escape(READY_MESSAGE).replace("%s", r"(\d+)"))


class GunicornServer:
    """One gunicorn master and its workers in their own process group, configured like production
    (platform/gunicorn.conf.py: sync workers, timeouts, worker recycling, access log) except for the port
    and the worker count; gthread when ``threads`` > 1. Error and access log go to ``log_path``."""

    def __init__(self, *, database_url: str, log_path: Path, workers: int = 2, threads: int = 1,
                 extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 name: str = "gunicorn") -> None:
        self.name = name
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.command = [sys.executable, "-m", "gunicorn", "config.wsgi:application",
                        "--bind", f"127.0.0.1:{self.port}", f"--workers={workers}", f"--threads={threads}",
                        # Production's gunicorn.conf.py plus a readiness hook; these flags override it.
                        "--config", "python:tests.support.gunicorn_hooks", "--log-level", "info", *extra_args]
        self.env = {**os.environ, **PRODUCTION_LIKE_ENV, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self._popen: subprocess.Popen | None = None

    def start(self, *, ready_timeout: float = 90) -> None:
        """Start the master; return once every worker has loaded Django (not just been forked)."""
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(self.command, cwd=REPO_ROOT, env=self.env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: len(self.ready_worker_pids()) >= self.workers, timeout=ready_timeout,
                   what=f"{self.name} with {self.workers} workers", alive=self.is_running, log=self.log_path)

    @property
    def master_pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._popen.pid

    def worker_pids(self) -> set[int]:
        """Live worker processes of the master (forked, maybe still importing Django)."""
        return set(_children(self.master_pid))

    def ready_worker_pids(self) -> set[int]:
        """Live workers that have loaded the application and accept requests."""
        ready = {int(pid) for pid in _READY_LINE.findall(self.log_text())}
        return self.worker_pids() & ready

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self) -> None:
        """SIGTERM (gunicorn finishes running requests), SIGKILL to the whole group after a grace period."""
        if self._popen is not None:
            stop_group(self._popen)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


def _children(pid: int) -> list[int]:
    """Non-zombie children of ``pid``, from /proc (a killed worker stays a zombie until the master reaps it)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name in parentheses may contain spaces; the fields after it are fixed.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(stat.parent.name))
    return children


# ------------------------------------------------------------------------------------------------ client


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: Message
    seconds: float  # from sending the request (connecting included) to the last byte of the body

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class SiteClient:
    """A browser without the browser: a cookie jar, Django's CSRF token taken from its cookie, and no retries
    or redirects followed — every request is sent once, and a broken connection raises, so a load test can
    count each failure. ``keep_alive`` reuses one connection (gthread workers keep it open; sync workers
    close it after every response)."""

    def __init__(self, base_url: str, *, keep_alive: bool = False, timeout: float = 30) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self._connection: http.client.HTTPConnection | None = None

    def login(self, username: str, password: str) -> None:
        """Sign in through /accounts/login/ (which also sets the CSRF cookie later POSTs need)."""
        self.get("/accounts/login/")
        reply = self.post("/accounts/login/", {"username": username, "password": password})
        if reply.status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"sign-in as {username!r} failed: HTTP {reply.status}")

    def signed_in_copy(self) -> SiteClient:
        """Another client sharing this one's session (one sign-in for many load threads)."""
        other = SiteClient(f"http://{self.host}:{self.port}", keep_alive=self.keep_alive, timeout=self.timeout)
        other.cookies = dict(self.cookies)
        return other

    def get(self, path: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: Mapping[str, str], *, headers: Mapping[str, str] | None = None) -> Reply:
        """A form POST with the CSRF token of the cookie jar (Django accepts the unmasked cookie value)."""
        body = urlencode({**fields, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")})
        form_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", path, body=body.encode(), headers=form_headers)

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        connection = self._connection or http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._connection = None
        all_headers = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if not self.keep_alive:
            all_headers["Connection"] = "close"
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            data = response.read()
        except BaseException:
            connection.close()
            raise
        seconds = time.perf_counter() - started
        self._store_cookies(response.msg.get_all("Set-Cookie") or [])
        if self.keep_alive and not response.will_close:
            self._connection = connection
        else:
            connection.close()
        return Reply(response.status, data, response.msg, seconds)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _store_cookies(self, headers: list[str]) -> None:
        for header in headers:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0":  # how Django deletes a cookie (e.g. the session on sign-out)
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
