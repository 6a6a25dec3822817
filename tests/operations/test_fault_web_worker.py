"""Fault drill (issue 7): `kill -9` of one gunicorn worker while signed-in clients browse and comment.

gunicorn's sync workers serve one request at a time, and pending connections wait in the listening socket's
backlog that all workers share, so the only requests a killed worker can take with it are the one it was
serving. The clients never retry, so every failure is counted.
"""
import os
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model

from ideas import services
from ideas.models import Comment
from tests.support.gunicorn_server import SiteClient

pytestmark = [pytest.mark.requires_postgres, pytest.mark.timeout(240)]

WORKERS = 2  # each worker boot imports Django (~2.3 s of CPU); two keep the drill short
THREADS_PER_WORKER = 1  # sync workers: at most one request in flight per worker
READERS = 4
WRITERS = 2
LOAD_SECONDS = 10
PASSWORD = "drill-pass-2026"


@dataclass(frozen=True)
class Outcome:
    method: str
    path: str
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: the connection broke or timed out
    error: str = ""
    comment: str = ""  # the body of a posted comment

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 500


def _send(client: SiteClient, method: str, path: str, comment: str = "") -> Outcome:
    started = time.monotonic()
    try:
        if method == "POST":
            reply = client.post(path, {"body": comment})
        else:
            reply = client.get(path)
    except (OSError, ConnectionError, TimeoutError) as error:  # http.client's RemoteDisconnected is one
        return Outcome(method, path, started, time.monotonic(), None, f"{type(error).__name__}: {error}", comment)
    return Outcome(method, path, started, time.monotonic(), reply.status, comment=comment)


def _wait_for(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def test_a_killed_web_worker_is_replaced_and_loses_at_most_its_in_flight_request(gunicorn_server):
    staff = get_user_model().objects.create_user("drill-staff", is_staff=True)
    user = get_user_model().objects.create_user("drill-dana", password=PASSWORD)
    area = services.area_create(slug="drill", name="Drill", pic=user, by=staff)
    idea = services.idea_create(submitter=user, area=area, title="Survive a worker crash", summary="Drill.")
    pages = ["/", "/ideas/", f"/ideas/{idea.key}", "/areas/", "/experiments/"]
    comment_path = f"/ideas/{idea.key}/comments/"

    # No recycling (production recycles after ~1000 requests): the only replaced worker is the killed one.
    server = gunicorn_server(workers=WORKERS, threads=THREADS_PER_WORKER, extra_args=["--max-requests", "0"])
    first = SiteClient(server.url, timeout=60)  # generous: a loaded 2-core machine queues requests for seconds
    assert first.get("/static/css/site.css").status == 200  # WhiteNoise serves the collected files
    first.login(user.username, PASSWORD)

    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(seed: int, writer: bool) -> None:
        client, rng = first.signed_in_copy(), random.Random(seed)
        while not stop.is_set():
            if writer:
                outcome = _send(client, "POST", comment_path, comment=f"drill comment {uuid.uuid4()}")
            else:
                outcome = _send(client, "GET", rng.choice(pages))
            with lock:
                outcomes.append(outcome)

    def succeeded() -> int:
        with lock:
            return sum(not outcome.failed for outcome in outcomes)

    threads = [threading.Thread(target=load, args=(n, n < WRITERS)) for n in range(READERS + WRITERS)]
    load_started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        _wait_for(lambda: succeeded() >= 20 and time.monotonic() - load_started >= LOAD_SECONDS / 2,
                  timeout=60, what="20 requests served before the kill")
        victim = random.choice(sorted(server.ready_worker_pids()))
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        _wait_for(lambda: len(server.ready_worker_pids() - {victim}) == WORKERS, timeout=60,
                  what=f"gunicorn to replace worker {victim}")
        respawned_at, served_before_respawn = time.monotonic(), succeeded()
        _wait_for(lambda: succeeded() >= served_before_respawn + 10
                  and time.monotonic() - load_started >= LOAD_SECONDS,
                  timeout=60, what="10 requests served after the respawn")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert server.is_running(), "the gunicorn master died with its worker"
    assert victim not in server.worker_pids()
    assert f"Worker (pid:{victim}) was sent SIGKILL" in server.log_text()

    failures = [outcome for outcome in outcomes if outcome.failed]
    unexpected = [outcome for outcome in outcomes if not outcome.failed
                  and outcome.status != (302 if outcome.method == "POST" else 200)]
    assert not unexpected, f"answers other than 200 (GET) / 302 (POST): {unexpected[:5]}"
    # Only requests in flight at the kill may fail: they started before it, and there is at most one per
    # worker thread of the killed worker.
    assert len(failures) <= THREADS_PER_WORKER, f"{len(failures)} failed requests: {failures}"
    assert all(outcome.started <= killed_at for outcome in failures), f"failed after the kill: {failures}"

    # No write lost or doubled: every answered POST is in the database once; a comment the database has
    # beyond those can only be the in-flight one whose answer died with the worker.
    posted = [outcome for outcome in outcomes if outcome.method == "POST"]
    answered = {outcome.comment for outcome in posted if not outcome.failed}
    in_flight = {outcome.comment for outcome in posted if outcome.failed}
    stored = list(Comment.objects.filter(idea=idea).values_list("body", flat=True))
    assert len(stored) == len(set(stored)), "a comment was stored twice"
    assert answered <= set(stored), f"{len(answered - set(stored))} acknowledged comments are missing"
    assert set(stored) - answered <= in_flight

    print(f"\n{len(outcomes)} requests in {time.monotonic() - load_started:.1f} s "
          f"({len(posted)} comment POSTs), {len(failures)} failed; worker {victim} replaced "
          f"{respawned_at - killed_at:.1f} s after the kill")
