"""Where the mixed load's CPU goes: every action of benchmarks/mixed_load.py sent in-process through the WSGI
application (the whole middleware stack, as under gunicorn), on the same seeded PostgreSQL + Redis stack.

For each action: median web-process CPU per request (``time.process_time``), median PostgreSQL backend CPU
(its /proc stat, 10 ms ticks: a mean), queries, and with ``--profile`` the top functions of a CPU-time cProfile over
all its requests (the profiler's overhead inflates that run's CPU column about four-fold: take the table from a
run without it). ``--path`` adds plain GETs for comparison (e.g. ``/healthz``, ``/api/``).

    .venv/bin/python benchmarks/mixed_load_profile.py [--repeat 15] [--profile] [--top 25] [--only poll]
                                                      [--path /api/]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Mapping
from email.message import Message
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from experiments_setup import start
from mixed_load import ACTIONS, Action, _discover, _get, _prepare

from tests.support.gunicorn_server import PRODUCTION_LIKE_ENV, Reply


class WsgiClient:
    """The benchmark's SiteClient, but calling the WSGI application in this process instead of a socket."""

    def __init__(self, application) -> None:
        self.application = application
        self.cookies: dict[str, str] = {}

    def login(self, username: str, password: str) -> None:
        self.get("/accounts/login/")
        reply = self.post("/accounts/login/", {"username": username, "password": password})
        if reply.status != 302:
            raise RuntimeError(f"sign-in as {username!r} failed: HTTP {reply.status}")

    def get(self, path: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: Mapping[str, str], *, headers: Mapping[str, str] | None = None) -> Reply:
        body = urlencode({**fields, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")}).encode()
        return self.request("POST", path, body=body,
                            headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def request(self, method: str, path: str, *, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Reply:
        parts = urlsplit(path)
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": parts.path, "QUERY_STRING": parts.query, "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
        }
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        reply: dict = {}

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info=None) -> None:
            reply["status"], reply["headers"] = int(status.split()[0]), response_headers

        started = time.perf_counter()
        result = self.application(environ, start_response)
        try:
            data = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        message = Message()
        for name, value in reply["headers"]:
            message[name] = value
            if name.lower() == "set-cookie":
                for cookie, morsel in SimpleCookie(value).items():
                    self.cookies[cookie] = morsel.value
        return Reply(reply["status"], data, message, time.perf_counter() - started)


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="requests per action (after 3 warm-up requests)")
    parser.add_argument("--profile", action="store_true", help="print each action's top functions")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", default="", help="only the actions whose name contains this")
    parser.add_argument("--path", action="append", default=[], help="also measure GET of this path (repeatable)")
    args = parser.parse_args()

    os.environ.update(PRODUCTION_LIKE_ENV)
    start("mixed-load-profile")
    from django.db import connection

    from config.wsgi import application
    from experiments.demo import LIVE_TITLE

    users, password = _prepare()
    client = WsgiClient(application)
    client.login(users[1], password)
    known = _discover(client, LIVE_TITLE)
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    rng = random.Random(0)
    print(f"{'action':<34}{'web CPU ms':>11}{'db CPU ms':>10}{'wall ms':>9}{'queries':>8}")
    weighted = 0.0
    extra = [Action(f"GET {path}", 0, lambda client, known, rng, path=path: _get(client, path)[:2]) for path in args.path]
    for action in [*ACTIONS, *extra]:
        if args.only not in action.name:
            continue
        web, db, wall, counts = [], [], [], []
        profile = cProfile.Profile(time.process_time)  # CPU, not wall time: the machine is shared
        for n in range(3 + args.repeat):
            with connection.cursor() as cursor:  # the backend serving this process (CONN_MAX_AGE keeps it)
                cursor.execute("SELECT pg_backend_pid()")
                backend = cursor.fetchone()[0]
            queries.clear()
            db_before, cpu_before, wall_before = _backend_cpu(backend), time.process_time(), time.perf_counter()
            with connection.execute_wrapper(count):
                if args.profile and n >= 3:
                    profile.enable()
                status, _ = action.send(client, known, rng)
                profile.disable()
            cpu, elapsed = time.process_time() - cpu_before, time.perf_counter() - wall_before
            if status != action.expect:
                raise RuntimeError(f"{action.name}: HTTP {status}")
            if n >= 3:
                web.append(1000 * cpu)
                wall.append(1000 * elapsed)
                db.append(1000 * (_backend_cpu(backend) - db_before))
                counts.append(len(queries))
        weighted += action.weight * statistics.median(web)
        print(f"{action.name:<34}{statistics.median(web):>11.1f}{statistics.mean(db):>10.1f}"
              f"{statistics.median(wall):>9.1f}{max(counts):>8}")
        if args.profile:
            for order in ("cumulative", "tottime"):
                stream = io.StringIO()
                pstats.Stats(profile, stream=stream).sort_stats(order).print_stats(args.top)
                print(stream.getvalue())
    if not args.only:
        print(f"mix-weighted web CPU per request: {weighted / sum(action.weight for action in ACTIONS):.1f} ms")


if __name__ == "__main__":
    main()
