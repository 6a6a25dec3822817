"""OpenAPI: describe token auth, and the 429 every operation can answer once a client exceeds its rate."""
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {"type": "http", "scheme": "bearer",
                "description": "A personal API token from /accounts/tokens/ (`Token <secret>` is accepted too)."}


_THROTTLED = {
    "description": "Rate limit exceeded; retry after `retry_after` seconds (also in the Retry-After header).",
    "headers": {"Retry-After": {"schema": {"type": "integer"},
                                "description": "Seconds until the next request may succeed."}},
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["detail", "retry_after"],
        "properties": {"detail": {"type": "string"}, "retry_after": {"type": "integer"}},
    }}},
}


def add_throttled_responses(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("429", _THROTTLED)
    return result
