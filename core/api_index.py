"""``GET /api/v1/``: where every resource is, and whom the credentials belong to (``flightdeck login`` checks a
token with it)."""
from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# Resource name → URL name of its list endpoint, in the order people meet them. A resource whose app is not
# installed (or not merged yet) is left out rather than listed broken.
RESOURCES = {
    "areas": "api_area_list",
    "ideas": "api_idea_list",
    "baselines": "api_baseline_list",
    "corpora": "api_corpus_list",
    "studies": "api_study_list",
    "runs": "api_run_list",
    "cycles": "api_cycle_list",
    "pools": "api_pool_list",
    "requests": "api_request_list",
    "usage": "api_usage",
    "tokens": "api_token_list",
    "webhooks": "api_webhook_list",
}


def _absolute(request: Request, url_name: str) -> str | None:
    try:
        return request.build_absolute_uri(reverse(url_name))
    except NoReverseMatch:
        return None


class ApiIndexView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: inline_serializer("ApiIndex", {
        "user": serializers.CharField(help_text="whom the token (or session) belongs to"),
        "resources": serializers.DictField(child=serializers.URLField(), help_text="resource name -> list URL"),
        "schema": serializers.URLField(),
        "docs": serializers.URLField(),
    })})
    def get(self, request: Request) -> Response:
        """Every resource's list URL, the schema and the browsable docs, and who you are."""
        resources = {name: url for name, url_name in RESOURCES.items() if (url := _absolute(request, url_name))}
        return Response({"user": request.user.get_username(), "resources": resources,
                         "schema": _absolute(request, "api-schema") + "?format=json",
                         "docs": _absolute(request, "api-docs")})
