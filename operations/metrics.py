"""Prometheus metrics: request latencies recorded in Redis, domain gauges read from the database at scrape time.

Why Redis for request latencies rather than prometheus_client's multiprocess mode: gunicorn runs several web
processes (and restarts them), and a scrape reaches only one of them. Multiprocess mode needs a shared
directory, an environment variable set before import, and cleanup hooks in gunicorn's config for dead workers;
Redis is already there, shared by every web process on every host, and one pipelined round trip per request
(four HINCRBY/HINCRBYFLOAT on one hash, well under a millisecond on loopback) is cheap. Counters live until
Redis is flushed; Prometheus handles counter resets itself.
"""
import logging
from collections import defaultdict
from collections.abc import Iterator
import redis
from django.db.models import Count
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from core.redis_guard import PauseAfterFailure, short_timeout_client
from experiments.models import LIVE_STATES, Attempt, SlotLease
from ideas.lifecycle import Status as IdeaStatus
from ideas.models import Idea
from operations.health import redis_client, worker_stale_after
from operations.models import Heartbeat, HeartbeatKind

log = logging.getLogger(__name__)

HTTP_KEY = "flightdeck:metrics:http"
# Upper bounds (seconds) of the latency histogram buckets; +Inf is the request count.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The queues the workers consume (experiments.execution.dispatch routes runs to gpu and slurm, everything else: default).
QUEUES: tuple[str, ...] = ("default", "gpu", "slurm")
# Kombu's Redis transport keeps messages of priority p > 0 in a list named queue + "\x06\x16" + p.
KOMBU_PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)
KOMBU_PRIORITY_SEP = "\x06\x16"
# The recording side gives Redis a quarter second and then leaves it alone for a while: a Redis outage must
# not slow every page down.
RECORD_TIMEOUT_SECONDS = 0.25
RECORD_PAUSE_AFTER_FAILURE_SECONDS = 5.0
_recording_pause = PauseAfterFailure(RECORD_PAUSE_AFTER_FAILURE_SECONDS)


def _bucket_for(seconds: float) -> str:
    for bound in BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


def record_request(*, view: str, method: str, status: int, seconds: float) -> None:
    """Count one finished request. Buckets are stored non-cumulative (one field per request) and summed up at
    scrape time. Never raises: metrics must not break a page."""
    if _recording_pause.paused:
        return
    series = f"{view}|{method}"
    pipe = short_timeout_client(RECORD_TIMEOUT_SECONDS, retries=0).pipeline(transaction=False)
    pipe.hincrby(HTTP_KEY, f"bucket|{series}|{_bucket_for(seconds)}", 1)
    pipe.hincrbyfloat(HTTP_KEY, f"sum|{series}", seconds)
    pipe.hincrby(HTTP_KEY, f"count|{series}", 1)
    pipe.hincrby(HTTP_KEY, f"status|{series}|{status // 100}xx", 1)
    try:
        pipe.execute()
    except redis.RedisError:
        _recording_pause.failed()
        log.warning("request metrics not recorded: Redis unavailable; retrying in %.0f s",
                    RECORD_PAUSE_AFTER_FAILURE_SECONDS)


class FlightdeckCollector:
    """Reads everything at scrape time; nothing is kept in this process."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator:
        # Without Redis the database gauges still come out; `flightdeck_redis_up` says why the rest is missing.
        try:
            from_redis = [*self._http(), *self._queues()]
        except redis.RedisError:
            from_redis = []
        yield GaugeMetricFamily("flightdeck_redis_up", "1 when Redis answered this scrape", value=int(bool(from_redis)))
        yield from from_redis
        yield from self._database()

    def _http(self) -> Iterator:
        raw = {key.decode(): value.decode() for key, value in self.client.hgetall(HTTP_KEY).items()}
        buckets: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        sums: dict[tuple[str, str], float] = {}
        statuses = CounterMetricFamily("flightdeck_http_requests", "HTTP requests by view, method and status class",
                                       labels=["view", "method", "status"])
        for field, value in sorted(raw.items()):
            kind, view, method, *rest = field.split("|")
            if kind == "bucket":
                buckets[view, method][rest[0]] = int(value)
            elif kind == "sum":
                sums[view, method] = float(value)
            elif kind == "status":
                statuses.add_metric([view, method, rest[0]], int(value))
        latency = HistogramMetricFamily("flightdeck_http_request_duration_seconds",
                                        "Time from the first middleware to the response, by view and method",
                                        labels=["view", "method"])
        for (view, method), counts in sorted(buckets.items()):
            cumulative, points = 0, []
            for bound in [*map(repr, BUCKETS), "+Inf"]:
                cumulative += counts.get(bound, 0)
                points.append((bound, cumulative))
            latency.add_metric([view, method], points, sums.get((view, method), 0.0))
        yield latency
        yield statuses

    def _queues(self) -> Iterator:
        depth = GaugeMetricFamily("flightdeck_celery_queue_depth", "Messages waiting in a Celery queue",
                                  labels=["queue"])
        pipe = self.client.pipeline(transaction=False)
        for queue in QUEUES:
            for step in KOMBU_PRIORITY_STEPS:
                pipe.llen(queue if step == 0 else f"{queue}{KOMBU_PRIORITY_SEP}{step}")
        pipe.hlen("unacked")
        lengths = pipe.execute()
        steps = len(KOMBU_PRIORITY_STEPS)
        for index, queue in enumerate(QUEUES):
            depth.add_metric([queue], sum(lengths[index * steps:(index + 1) * steps]))
        yield depth
        yield GaugeMetricFamily("flightdeck_celery_unacked_messages",
                                "Messages taken by a worker and not yet acknowledged", value=lengths[-1])

    def _database(self) -> Iterator:
        attempts = GaugeMetricFamily("flightdeck_attempts_live", "Attempts queued, starting or running",
                                     labels=["state"])
        by_state = dict(Attempt.objects.filter(state__in=LIVE_STATES).values_list("state")
                        .annotate(n=Count("id")).values_list("state", "n"))
        for state in LIVE_STATES:
            attempts.add_metric([state], by_state.get(state, 0))
        yield attempts

        slots = GaugeMetricFamily("flightdeck_slots_busy", "Device slots leased by a live attempt, per host",
                                  labels=["host"])
        for host, busy in (SlotLease.objects.filter(attempt__state__in=LIVE_STATES).values_list("host")
                           .annotate(n=Count("id")).order_by("host").values_list("host", "n")):
            slots.add_metric([host], busy)
        yield slots

        ideas = GaugeMetricFamily("flightdeck_ideas", "Ideas by lifecycle status", labels=["status"])
        counts = dict(Idea.objects.values_list("status").annotate(n=Count("id")).order_by().values_list("status", "n"))
        for status in IdeaStatus.values:
            ideas.add_metric([status], counts.get(status, 0))
        yield ideas

        live = Heartbeat.objects.filter(kind=HeartbeatKind.WORKER, seen_at__gte=timezone.now() - worker_stale_after())
        yield GaugeMetricFamily("flightdeck_workers_live", "Celery workers with a fresh heartbeat",
                                value=live.count())
        beat = Heartbeat.objects.filter(kind=HeartbeatKind.BEAT).values_list("seen_at", flat=True).first()
        if beat is not None:
            yield GaugeMetricFamily("flightdeck_beat_heartbeat_age_seconds", "Seconds since beat's last heartbeat",
                                    value=(timezone.now() - beat).total_seconds())


def render() -> bytes:
    """The whole exposition, in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlightdeckCollector(redis_client()))
    return generate_latest(registry)
