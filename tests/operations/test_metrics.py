"""/metrics: access rules, domain gauges from real rows and queues, latencies summed over gunicorn processes."""
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.contrib.auth.models import User
from prometheus_client.parser import text_string_to_metric_families

from config import celery_app
from core.redis_guard import PauseAfterFailure
from experiments import services as experiment_services
from experiments.execution.attempts import attempt_claim
from ideas import services as idea_services
from operations import metrics
from tests.support.celery_processes import REPO_ROOT
from tests.support.processes import free_port, stop_group

TOKEN = "scrape-token-for-tests-0123456789"


@pytest.fixture
def metrics_token(settings) -> str:
    settings.FLIGHTDECK_METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def clean_http_metrics(redis_server):
    redis_server.client().delete(metrics.HTTP_KEY)


def scrape(client, token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label items): value} of one scrape, parsed by prometheus_client's own parser."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples}


def test_it_refuses_anonymous_scrapers_with_401_and_a_bearer_challenge(client, metrics_token, db):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="flightdeck-metrics"'


def test_it_refuses_a_wrong_token_with_401(client, metrics_token, db):
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401


def test_it_refuses_every_token_while_none_is_configured(client, settings, db):
    settings.FLIGHTDECK_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_it_refuses_signed_in_non_staff_with_403(client, metrics_token, db):
    client.force_login(User.objects.create_user("olga"))
    assert client.get("/metrics").status_code == 403


def test_it_serves_staff_sessions_and_the_token(client, metrics_token, clean_http_metrics, db):
    assert ("flightdeck_redis_up", ()) in scrape(client)
    client.force_login(User.objects.create_user("stella", is_staff=True))
    assert client.get("/metrics").status_code == 200


@pytest.mark.timeout(240)
def test_it_counts_queued_messages_live_attempts_busy_slots_and_ideas(client, metrics_token, celery_processes,
                                                                      clean_http_metrics):
    # celery_processes stopped the shared worker and emptied the broker; nothing consumes the queues here.
    staff = User.objects.create_user("stella", is_staff=True)
    pic = User.objects.create_user("pia")
    area = idea_services.area_create(slug="moe", name="MoE", pic=pic, by=staff)
    idea = idea_services.idea_create(submitter=pic, area=area, title="More experts", summary="Why it may help.",
                                     recipe_patch={"moe.num_experts": 8})
    experiment_services.baseline_save(name="tiny", recipe="tiny-ci")
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline="tiny", ideas=[idea.key],
                                             seeds=[1], max_steps=4)
    first, second = (run.attempts.get() for run in study.runs.order_by("pk"))
    assert attempt_claim(first.pk, host="gpu-07", slot_ids=[0, 1]).attempt.slot == 0
    # Kombu keeps a message with a priority in a list of its own; the depth of a queue counts those too.
    celery_app.send_task("operations.tasks.beat_heartbeat", queue="slurm")
    celery_app.send_task("operations.tasks.beat_heartbeat", queue="slurm", priority=5)

    samples = scrape(client)
    assert samples["flightdeck_celery_queue_depth", (("queue", "gpu"),)] == 2  # both start messages, on commit
    assert samples["flightdeck_celery_queue_depth", (("queue", "slurm"),)] == 2
    assert samples["flightdeck_attempts_live", (("state", "queued"),)] == 1
    assert samples["flightdeck_attempts_live", (("state", "starting"),)] == 1
    assert samples["flightdeck_attempts_live", (("state", "running"),)] == 0
    assert samples["flightdeck_slots_busy", (("host", "gpu-07"),)] == 1
    assert samples["flightdeck_ideas", (("status", "in_ablation"),)] == 1  # launching its ablation moved it
    assert samples["flightdeck_ideas", (("status", "landed"),)] == 0
    assert samples["flightdeck_workers_live", ()] == 0
    assert samples["flightdeck_redis_up", ()] == 1
    assert second.state == "queued"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.timeout(240)
def test_request_latencies_add_up_across_gunicorn_processes(client, metrics_token, clean_http_metrics, db, tmp_path):
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:  # polls another view, so a slow poll that timed out here cannot add to the counts below
            try:
                _get(f"http://127.0.0.1:{port}/readyz")
                break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        statuses = [_get(f"http://127.0.0.1:{port}/healthz") for _ in range(20)]
        statuses += [_get(f"http://127.0.0.1:{port}/no-such-page/") for _ in range(5)]
    finally:
        stop_group(server)
    assert statuses == [200] * 20 + [404] * 5

    samples = scrape(client)  # this process served none of those requests
    healthz = (("method", "GET"), ("view", "operations:healthz"))
    assert samples["flightdeck_http_request_duration_seconds_count", healthz] == 20
    assert samples["flightdeck_http_request_duration_seconds_bucket", (("le", "+Inf"), *healthz)] == 20
    assert 0 < samples["flightdeck_http_request_duration_seconds_sum", healthz] < 20 * 10
    assert samples["flightdeck_http_requests_total", (("method", "GET"), ("status", "2xx"),
                                                       ("view", "operations:healthz"))] == 20
    assert samples["flightdeck_http_requests_total", (("method", "GET"), ("status", "4xx"),
                                                       ("view", "<unresolved>"))] == 5
    buckets = [value for (name, labels), value in samples.items()
               if name == "flightdeck_http_request_duration_seconds_bucket" and dict(labels)["view"] == "<unresolved>"]
    assert buckets == sorted(buckets) and len(buckets) == len(metrics.BUCKETS) + 1  # cumulative, one per bound


def test_pages_and_the_database_gauges_survive_a_redis_outage(client, metrics_token, redis_server, monkeypatch, db):
    monkeypatch.setattr(metrics, "_recording_pause", PauseAfterFailure(metrics.RECORD_PAUSE_AFTER_FAILURE_SECONDS))
    redis_server.stop()
    started = time.monotonic()
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").status_code == 200  # the second one skips Redis altogether
    assert time.monotonic() - started < 3
    samples = scrape(client)
    assert samples["flightdeck_redis_up", ()] == 0
    assert samples["flightdeck_ideas", (("status", "submitted"),)] == 0
    assert not any(name.startswith("flightdeck_celery") for name, _ in samples)
