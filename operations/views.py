"""Health, readiness and metrics endpoints: parse, call one function, answer."""
import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from operations import health, metrics


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving; touches neither the database nor Redis."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    ready, results = health.readiness()
    body = {"status": "ok" if ready else "unavailable",
            "checks": {name: result.as_dict() for name, result in results.items()}}
    return JsonResponse(body, status=200 if ready else 503)


def _metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """Staff sessions and `Authorization: Bearer <FLIGHTDECK_METRICS_TOKEN>` may scrape; None means allowed."""
    token = settings.FLIGHTDECK_METRICS_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        # Constant-time: the comparison must not tell a guesser how many leading characters were right.
        if hmac.compare_digest(offered.strip().encode(), token.encode()):
            return None
    elif request.user.is_authenticated:
        if request.user.is_staff:
            return None
        return HttpResponse("/metrics is for staff or a scraper with the metrics token.\n", status=403,
                            content_type="text/plain")
    response = HttpResponse("/metrics needs a staff session or Authorization: Bearer <metrics token>.\n",
                            status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="flightdeck-metrics"'
    return response


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if (refusal := _metrics_refusal(request)) is not None:
        return refusal
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
