"""Mixed load (issue 7): signed-in clients browse, poll, submit and comment against gunicorn + PostgreSQL.

1. Stack on loopback: a throw-away PostgreSQL cluster and Redis, `migrate` (experiments_setup.start; DEBUG
   off), the demo data (the `seed_demo` seeders, except that the finished demo studies get made-up
   metrics instead of minutes of training), the live demo study (its runs stay queued: no Celery worker
   runs, so a poll costs what a queued study's poll costs), `collectstatic`, and gunicorn with production's
   platform/gunicorn.conf.py (sync workers, 2 × cores + 1) and DATABASE_CONN_MAX_AGE=60 as in
   platform/flightdeck.env.example (tests/support/gunicorn_server.py).
2. ``--clients`` threads each sign in once through the login form as one of the demo users, open the idea
   list, the study list and a study page to learn keys and ids (not measured; SETUP_CONCURRENCY clients at a
   time), and then, for ``--seconds``,
   loop: think (uniform 0.5×–1.5× ``--think``; 0 = closed loop), pick an action by weight, send it once
   (no retries, redirects not followed). The actions and their weights are in ACTIONS.
3. Prints per-action and overall requests, req/s, p50/p95/p99/max latency and errors (a broken connection,
   a timeout or an unexpected status), the gunicorn workers' CPU per request and the machine's load, and
   writes all of it as JSON.

    .venv/bin/python benchmarks/mixed_load.py [--clients 50] [--seconds 60] [--think 1.0] [--workers 5]
                                              [--json var/benchmarks/mixed_load.json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from experiments_setup import REPO, start

from tests.support.gunicorn_server import GunicornServer, SiteClient

TARGET_P95_MS = 300
KEY = re.compile(r'href="/ideas/(IDEA-\d+)"')
STUDY = re.compile(r'href="/experiments/studies/(\d+)/"')
RUN = re.compile(r'href="/experiments/runs/(\d+)/"')
OPTION = re.compile(r'<option value="([^"]+)"')
IDEA_URL = re.compile(r"/ideas/(IDEA-\d+)$")


@dataclass
class Known:
    """What one client has seen on pages so far: idea keys, study and run ids, filter and form choices."""

    keys: list[str] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    area_ids: list[str] = field(default_factory=list)
    area_slugs: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    live_study: str = ""
    live_runs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Action:
    name: str
    weight: int
    send: Callable[[SiteClient, Known, random.Random], tuple[int, float]]
    expect: int = 200


def _get(client: SiteClient, path: str, *, htmx: bool = False) -> tuple[int, float, str]:
    reply = client.get(path, headers={"HX-Request": "true"} if htmx else None)
    return reply.status, reply.seconds, reply.text


def idea_list(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    query = rng.choice([f"?page={rng.randint(1, 3)}", f"?status={rng.choice(known.statuses)}", "?q=moe", "",
                        f"?area={rng.choice(known.area_slugs)}" if known.area_slugs else ""])
    status, seconds, text = _get(client, f"/ideas/{query}")
    known.keys.extend(key for key in KEY.findall(text)[:5] if key not in known.keys)
    return status, seconds


def idea_detail(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    return _get(client, f"/ideas/{rng.choice(known.keys)}")[:2]


def home(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    return _get(client, "/")[:2]


def study_list(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    return _get(client, "/experiments/")[:2]


def study_detail(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    return _get(client, f"/experiments/studies/{rng.choice(known.studies)}/")[:2]


def run_detail(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    return _get(client, f"/experiments/runs/{rng.choice(known.runs)}/")[:2]


def poll_study_progress(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    return _get(client, f"/experiments/studies/{known.live_study}/progress/", htmx=True)[:2]


def poll_study_results(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    return _get(client, f"/experiments/studies/{known.live_study}/results/?smooth=0", htmx=True)[:2]


def poll_run_live(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    return _get(client, f"/experiments/runs/{rng.choice(known.live_runs)}/live/", htmx=True)[:2]


def submit_idea(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    """POST of the new-idea form (the client loaded the form once while discovering area ids)."""
    n = rng.randrange(10**9)
    reply = client.post("/ideas/new/", {
        "title": f"Load-test idea {n}", "area": rng.choice(known.area_ids), "tags": "load-test, moe",
        "summary": "Submitted by the mixed-load benchmark.\n\n*Markdown* with a list:\n- one\n- two",
        "hypothesis": "", "recipe_patch": "", "estimated_gpu_hours": "12"})
    if match := IDEA_URL.search(reply.headers.get("Location", "")):
        known.keys.append(match.group(1))
    return reply.status, reply.seconds


def comment(client: SiteClient, known: Known, rng: random.Random) -> tuple[int, float]:
    reply = client.post(f"/ideas/{rng.choice(known.keys)}/comments/",
                        {"body": f"Load-test comment {rng.randrange(10**9)}: **looks promising**."})
    return reply.status, reply.seconds


# Weights: mostly reading, a page open polls every 2-5 s, and one write in seven requests.
ACTIONS = [
    Action("GET idea list (filters, pages)", 20, idea_list),
    Action("GET idea detail", 18, idea_detail),
    Action("GET home", 5, home),
    Action("GET study list", 5, study_list),
    Action("GET study detail", 8, study_detail),
    Action("GET run detail", 4, run_detail),
    Action("poll study progress (htmx)", 12, poll_study_progress),
    Action("poll study results (htmx)", 5, poll_study_results),
    Action("poll run live (htmx)", 8, poll_run_live),
    Action("POST new idea", 5, submit_idea, expect=302),
    Action("POST comment", 10, comment, expect=302),
]


def _finished_demo_studies() -> None:
    """The demo's finished studies (experiments.demo.seed) with made-up metrics instead of trained ones:
    training them takes minutes of CPU whenever the recipes change, and pages only read the rows."""
    from experiments import demo, services
    from tests.experiments.finished_runs import finish_study

    demo._baselines()
    for spec in demo._study_specs():
        study = services.study_launch(user=demo._demo_user(), kind=spec["kind"], baseline=demo._baseline(spec),
                                      ideas=[idea.key for idea in spec["ideas"]], seeds=demo.DEMO_SEEDS,
                                      max_steps=demo._steps(spec), leave_one_out=spec.get("leave_one_out", False),
                                      title=demo._title(spec))
        finish_study(study, steps=demo._steps(spec), eval_every=5)


def _prepare() -> tuple[list[str], str]:
    """Demo data, the live study and static files; returns the demo usernames and their password."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils.module_loading import import_string

    from experiments.demo import LIVE_TITLE
    from experiments.models import Study
    from ideas.demo_data import DEMO_PASSWORD

    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        for path in settings.FLIGHTDECK_DEMO_SEEDERS:  # what `seed_demo` runs, in its order
            seeder = _finished_demo_studies if path == "experiments.demo.seed" else import_string(path)
            started = time.monotonic()
            seeder()
            print(f"  {path}: {time.monotonic() - started:.0f} s", file=sys.__stdout__)
        call_command("start_demo_study")
        call_command("collectstatic", interactive=False, verbosity=0)
    if not Study.objects.filter(title=LIVE_TITLE).exists():
        print("note: the live demo study was not launched; progress polls go to a finished study")
    users = list(get_user_model().objects.filter(is_active=True).order_by("pk").values_list("username", flat=True))
    return users, DEMO_PASSWORD


def _discover(client: SiteClient, live_title: str) -> Known:
    """Keys and ids from the pages a person would see first (idea list, study list, a study, the new-idea form)."""
    known = Known()
    text = client.get("/ideas/").text
    known.keys = list(dict.fromkeys(KEY.findall(text)))
    known.area_slugs, known.statuses = _options(text, "area"), _options(text, "status")
    known.area_ids = _options(client.get("/ideas/new/").text, "area")
    studies_page = client.get("/experiments/").text
    known.studies = list(dict.fromkeys(STUDY.findall(studies_page)))
    live = re.search(r'href="/experiments/studies/(\d+)/"[^>]*>[^<]*' + re.escape(live_title), studies_page)
    known.live_study = live.group(1) if live else known.studies[0]
    known.live_runs = list(dict.fromkeys(RUN.findall(client.get(f"/experiments/studies/{known.live_study}/").text)))
    finished = known.studies[-1]
    known.runs = list(dict.fromkeys(RUN.findall(client.get(f"/experiments/studies/{finished}/").text)))
    missing = [name for name in ("keys", "studies", "runs", "area_ids", "area_slugs", "statuses", "live_runs")
               if not getattr(known, name)]
    if missing:
        raise RuntimeError(f"the pages showed no {', '.join(missing)}; is the demo data seeded?")
    return known


def _options(page: str, name: str) -> list[str]:
    """The non-empty option values of the page's <select name=...>."""
    select = page.split(f'name="{name}"', 1)[-1].split("</select>", 1)[0]
    return [value for value in OPTION.findall(select) if value]


@dataclass
class Sample:
    action: str
    seconds: float
    error: str  # "" when the request succeeded


# Clients signing in and looking around at the same time, before the measured window. Sign-in is slow on purpose
# (PBKDF2, hundreds of ms of CPU each): all 50 at once on a busy 2-core machine queued past the client's 60 s timeout.
SETUP_CONCURRENCY = 4


def _client_loop(index: int, server: GunicornServer, user: str, password: str, live_title: str, think: float,
                 ready: threading.Barrier, setup_slots: threading.Semaphore, window: dict[str, float],
                 samples: list[Sample], lock: threading.Lock) -> None:
    rng = random.Random(index)
    client = SiteClient(server.url, timeout=60)
    try:
        with setup_slots:
            client.login(user, password)
            known = _discover(client, live_title)
    except BaseException:
        ready.abort()  # the other clients must not wait for this one forever
        raise
    try:
        ready.wait()
    except threading.BrokenBarrierError:  # another client failed its set-up (its traceback says why)
        return
    weights = [action.weight for action in ACTIONS]
    mine: list[Sample] = []
    while True:
        if think:
            time.sleep(rng.uniform(0.5 * think, 1.5 * think))
        if time.monotonic() >= window["end"]:
            break
        action = rng.choices(ACTIONS, weights)[0]
        started = time.perf_counter()
        try:
            status, seconds = action.send(client, known, rng)
            error = "" if status == action.expect else f"HTTP {status}"
        except (OSError, ConnectionError, TimeoutError) as exc:
            seconds, error = time.perf_counter() - started, type(exc).__name__
        if time.monotonic() <= window["end"]:  # a request cut by the end of the window still counts
            mine.append(Sample(action.name, seconds, error))
    with lock:
        samples.extend(mine)


def _quantiles(values_ms: list[float]) -> dict[str, float]:
    if len(values_ms) < 2:
        value = values_ms[0] if values_ms else float("nan")
        return {"p50": value, "p95": value, "p99": value, "max": value}
    cuts = statistics.quantiles(values_ms, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values_ms)}


def _cpu_seconds(server: GunicornServer) -> float:
    """CPU time of gunicorn's master and workers, including workers that exited (recycled or killed)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def fields(pid: int) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    master = fields(server.master_pid)
    # utime, stime, cutime, cstime are fields 14-17 of /proc/<pid>/stat (index 11-14 after the name).
    total = sum(int(value) for value in master[11:15])
    for pid in server.worker_pids():
        try:
            total += sum(int(value) for value in fields(pid)[11:13])
        except FileNotFoundError:
            pass
    return total / ticks


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _report(samples: list[Sample], seconds: float) -> tuple[list[dict], dict]:
    by_action: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_action[sample.action].append(sample)

    def row(name: str, group: list[Sample]) -> dict:
        errors: dict[str, int] = defaultdict(int)
        for sample in group:
            if sample.error:
                errors[sample.error] += 1
        return {"endpoint": name, "requests": len(group), "per_second": len(group) / seconds,
                **_quantiles([1000 * sample.seconds for sample in group]), "errors": sum(errors.values()),
                "error_kinds": dict(errors)}

    rows = [row(action.name, by_action[action.name]) for action in ACTIONS if by_action[action.name]]
    return rows, row("all", samples)


def _print_table(rows: list[dict], overall: dict) -> None:
    print(f"{'endpoint':<34}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'errors':>8}")
    for row in [*rows, overall]:
        print(f"{row['endpoint']:<34}{row['requests']:>9}{row['per_second']:>8.1f}{row['p50']:>9.0f}"
              f"{row['p95']:>9.0f}{row['p99']:>9.0f}{row['max']:>9.0f}{row['errors']:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean think time between a client's requests in seconds (0: closed loop)")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1,
                        help="gunicorn sync workers (production's default: 2 x cores + 1)")
    parser.add_argument("--json", type=Path, default=REPO / "var" / "benchmarks" / "mixed_load.json")
    args = parser.parse_args()

    # atexit (which stops PostgreSQL and Redis) only runs on a normal exit: make `timeout`'s SIGTERM one.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    work = start("mixed-load")
    print(f"PostgreSQL, Redis and migrations: {time.monotonic() - started:.0f} s")
    from experiments.demo import LIVE_TITLE

    users, password = _prepare()
    print(f"stack ready after {time.monotonic() - started:.0f} s: PostgreSQL, Redis, demo data "
          f"({len(users)} users); starting gunicorn with {args.workers} sync workers")
    server = GunicornServer(database_url=os.environ["DATABASE_URL"], log_path=work / "gunicorn.log",
                            workers=args.workers)
    server.start()
    samples: list[Sample] = []
    lock = threading.Lock()
    window = {"end": float("inf")}

    def begin_window() -> None:  # runs once, when every client has signed in and looked around
        window["start"] = time.monotonic()
        window["end"] = window["start"] + args.seconds
        window["cpu"], window["busy"], window["client_cpu"] = _cpu_seconds(server), _machine_busy(), time.process_time()

    ready = threading.Barrier(args.clients, action=begin_window)
    setup_slots = threading.Semaphore(SETUP_CONCURRENCY)
    threads = [threading.Thread(target=_client_loop, args=(n, server, users[n % len(users)], password, LIVE_TITLE,
                                                            args.think, ready, setup_slots, window, samples, lock))
               for n in range(args.clients)]
    load_before = os.getloadavg()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if ready.broken:
            sys.exit("a client failed to sign in or to look around before the window; nothing was measured")
        cpu = _cpu_seconds(server) - window["cpu"]
        busy_after = _machine_busy()
        # The client threads share the 2 cores with the server: their CPU is part of the picture.
        client_cpu = time.process_time() - window["client_cpu"]
    finally:
        server.stop()
    busy = (busy_after[0] - window["busy"][0]) / max(1, busy_after[1] - window["busy"][1])
    rows, overall = _report(samples, args.seconds)
    print(f"{args.clients} clients, think {args.think:g} s (uniform ±50%), {args.seconds:.0f} s, gunicorn "
          f"{args.workers} sync workers; 1/5/15-min load before: {' / '.join(f'{v:.1f}' for v in load_before)}; "
          f"machine CPU busy during the window: {100 * busy:.0f}%")
    _print_table(rows, overall)
    per_request_ms = 1000 * cpu / max(1, overall["requests"])
    print(f"gunicorn CPU: {cpu:.1f} s for {overall['requests']} requests = {per_request_ms:.1f} ms per request; "
          f"client threads' CPU: {client_cpu:.1f} s")
    verdict = "PASS" if overall["errors"] == 0 and overall["p95"] < TARGET_P95_MS else "FAIL"
    print(f"target (0 errors, p95 < {TARGET_P95_MS} ms): {verdict}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "clients": args.clients, "seconds": args.seconds, "think_s": args.think, "workers": args.workers,
        "load_average_before": load_before, "machine_cpu_busy": busy, "gunicorn_cpu_s": cpu,
        "gunicorn_cpu_ms_per_request": per_request_ms, "client_cpu_s": client_cpu, "overall": overall, "endpoints": rows, "verdict": verdict,
    }, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
