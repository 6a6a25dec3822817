"""Idea list at 10,000 ideas: SQL queries per page (list page and API list) and p95 latency under load.

1. A fresh database (SQLite in a temp dir unless DATABASE_URL is set) and a throw-away Redis (the page cache's;
   unless REDIS_URL is set) get the demo areas and 10,000 ideas
   with tags. Rows are bulk-inserted: going through `idea_create` 10,000 times would only measure the seeding.
2. Queries per page are counted in-process for the first, a middle and the last page, of both the list page
   and `GET /api/v1/ideas/`; they must not depend on the page or on the number of ideas.
3. gunicorn (gthread workers, DEBUG off) serves the site on loopback; 20 client threads with keep-alive
   connections request random list pages for a fixed time; p50/p95/p99 latency and throughput are printed.

    .venv/bin/python benchmarks/ideas_list.py [--ideas 10000] [--clients 20] [--seconds 20] [--workers 3] [--primed]
"""
from __future__ import annotations

import argparse
import atexit
import http.client
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _configure_environment() -> None:
    """Settings are read at import, so the environment is fixed before Django starts."""
    if "FLIGHTDECK_VAR_DIR" not in os.environ:
        var_dir = tempfile.mkdtemp(prefix="flightdeck-bench-ideas-")
        atexit.register(shutil.rmtree, var_dir, ignore_errors=True)
        os.environ["FLIGHTDECK_VAR_DIR"] = var_dir
    os.environ["DEBUG"] = "false"  # DEBUG keeps every query in memory and renders slower error pages
    if "REDIS_URL" not in os.environ:  # the page cache lives in Redis, as in production: a throw-away one
        from tests.support.redis_server import RedisServer

        redis = RedisServer(Path(os.environ["FLIGHTDECK_VAR_DIR"]))
        redis.start()
        atexit.register(redis.stop)
        os.environ["REDIS_URL"] = redis.url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _populate(count: int) -> str:
    """Demo areas plus ``count`` ideas; returns a session cookie of a signed-in user."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from ideas.demo import seed
    from ideas.lifecycle import Status
    from ideas.models import Area, Idea, IdeaKeyCounter, Tag, format_idea_key

    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        seed(quiet)
    areas = list(Area.objects.all())
    users = list(get_user_model().objects.all())
    tags = [Tag.objects.get_or_create(name=f"topic-{n:02d}")[0] for n in range(40)]
    start = Idea.objects.count()
    statuses = Status.values
    rng = random.Random(0)
    batch = []
    for number in range(start + 1, count + 1):
        batch.append(Idea(
            number=number, key=format_idea_key(number), title=f"Benchmark idea {number}: routing variant {number % 97}",
            summary="Bulk-inserted row for the list benchmark. " * 4, area=areas[number % len(areas)],
            submitter=users[number % len(users)], status=statuses[number % len(statuses)],
            recipe_patch={"moe.latent_size": 64}, estimated_gpu_hours=number % 500,
        ))
    Idea.objects.bulk_create(batch, batch_size=1000)
    IdeaKeyCounter.objects.update_or_create(pk=1, defaults={"last_number": count})
    through = Idea.tags.through
    links = [through(idea_id=idea_id, tag_id=tag.pk)
             for idea_id in Idea.objects.filter(number__gt=start).values_list("pk", flat=True)
             for tag in rng.sample(tags, 2)]
    through.objects.bulk_create(links, batch_size=2000, ignore_conflicts=True)

    client = Client()
    client.force_login(users[1])
    return client.cookies["sessionid"].value


def _queries_per_page(session: str, url: str, pages: list[int]) -> list[int]:
    """Queries of each page rendered from scratch: the list's page cache is emptied before each one."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from ideas.list_cache import list_changed

    client = Client()
    client.cookies["sessionid"] = session
    counts = []
    for page in pages:
        list_changed()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"{url}?page={page}")
        assert response.status_code == 200, (url, page, response.status_code)
        counts.append(len(queries.captured_queries))
    return counts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(port: int, workers: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=REPO, env=os.environ.copy())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start listening within 30 s")


def _prime(port: int, session: str, last_page: int) -> None:
    """Request every list page once, so the measured requests find them in the page cache (ideas/list_cache.py),
    as on a site whose list nobody edited for a while; without it, 20 s of random pages are mostly misses."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for page in range(1, last_page + 1):
        conn.request("GET", f"/ideas/?page={page}", headers={"Cookie": f"sessionid={session}", "Host": "127.0.0.1"})
        conn.getresponse().read()
    conn.close()


def _load(port: int, session: str, clients: int, seconds: float, last_page: int) -> tuple[list[float], int]:
    """``clients`` threads, each on its own keep-alive connection, GET random list pages for ``seconds``."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client_loop(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Cookie": f"sessionid={session}", "Host": "127.0.0.1"}
        mine: list[float] = []
        failed = 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            conn.request("GET", f"/ideas/?page={rng.randint(1, last_page)}", headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            failed += response.status != 200
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ideas", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (4 threads each)")
    parser.add_argument("--primed", action="store_true", help="request every page once before measuring")
    args = parser.parse_args()

    _configure_environment()
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from ideas.views import IDEAS_PER_PAGE

    started = time.monotonic()
    session = _populate(args.ideas)
    last_page = -(-args.ideas // IDEAS_PER_PAGE)
    print(f"database: {connection.vendor}, {args.ideas} ideas, populated in {time.monotonic() - started:.1f} s")

    api_last_page = -(-args.ideas // settings.REST_FRAMEWORK["PAGE_SIZE"])
    for url, last in (("/ideas/", last_page), ("/api/v1/ideas/", api_last_page)):
        pages = [1, last // 2, last]
        per_page = _queries_per_page(session, url, pages)
        print(f"SQL queries per page of {url}: {per_page} (pages {pages})")
        assert len(set(per_page)) == 1, f"{url}: query count depends on the page: {per_page}"
    connection.close()

    load_before = os.getloadavg()[0]  # other work on the machine skews latency; report it
    port = _free_port()
    server = _serve(port, args.workers)
    try:
        _load(port, session, clients=args.clients, seconds=2, last_page=last_page)  # warm up workers
        if args.primed:
            _prime(port, session, last_page)
        latencies, errors = _load(port, session, clients=args.clients, seconds=args.seconds, last_page=last_page)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies_ms = sorted(1000 * value for value in latencies)
    quantiles = statistics.quantiles(latencies_ms, n=100)
    print(f"gunicorn gthread, {args.workers} workers x 4 threads, {args.clients} clients, {args.seconds:.0f} s, "
          f"{'primed page cache, ' if args.primed else ''}"
          f"1-min load average before: {load_before:.1f}")
    print(f"requests: {len(latencies_ms)} ({errors} non-200), {len(latencies_ms) / args.seconds:.0f} req/s")
    print(f"latency ms: p50 {quantiles[49]:.1f}  p95 {quantiles[94]:.1f}  p99 {quantiles[98]:.1f}  "
          f"max {latencies_ms[-1]:.1f}")


if __name__ == "__main__":
    main()
