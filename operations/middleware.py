"""Request latency and status counters for /metrics (stored in Redis, see operations/metrics.py)."""
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from operations import metrics

# Label values are bounded: an unknown method or an unresolved URL must not create a new series per request.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetricsMiddleware:
    """Sits right after WhiteNoise, so static files are not counted and everything else is."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        metrics.record_request(
            view=match.view_name if match else "<unresolved>",
            method=request.method if request.method in KNOWN_METHODS else "OTHER",
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response
