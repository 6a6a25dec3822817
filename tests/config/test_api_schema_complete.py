"""The OpenAPI schema documents every endpoint under /api/v1/ with every method it answers, a summary or
description of what it does, and is served as JSON too; the index and docs pages are the exceptions that
describe the API rather than being part of it."""
import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

API_PREFIX = "api/v1/"
NOT_OPERATIONS = {"/api/v1/schema/", "/api/v1/docs/"}


def api_routes() -> dict[str, set[str]]:
    """Every API path (OpenAPI spelling: ``{name}`` parameters) → the HTTP methods its view implements."""
    routes: dict[str, set[str]] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith(API_PREFIX):
                view = pattern.callback.view_class
                methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}
                path = "/" + route
                for converter in ("int:", "str:", "slug:"):
                    path = path.replace(f"<{converter}", "{")
                # drf-spectacular names a `pk` parameter `id`
                routes[path.replace(">", "}").replace("{pk}", "{id}")] = methods

    walk(get_resolver().url_patterns, "")
    return routes


@pytest.fixture
def schema(db) -> dict:
    response = APIClient().get("/api/v1/schema/?format=json")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return json.loads(response.content)


def test_every_api_endpoint_and_method_is_in_the_schema(schema):
    routes = api_routes()
    assert len(routes) >= 25 and "/api/v1/studies/preview/" in routes

    documented = {path: set(operations) for path, operations in schema["paths"].items()}
    missing = {path: sorted(methods - documented.get(path, set()))
               for path, methods in routes.items() if path not in NOT_OPERATIONS and methods - documented.get(path, set())}
    assert missing == {}
    assert set(documented) <= set(routes)


def test_every_operation_says_what_it_answers(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("responses"), f"{method.upper()} {path} documents no response"
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert success, f"{method.upper()} {path} documents no success answer"
