"""OpenAPI: the answers DRF itself gives before or around any view, documented on every operation they apply to.

Found by the schema fuzzer (tests/operations/test_api_schema_fuzz.py): without these, clients reading the
schema could not know that a revoked token gets a 401, a list asked for a page past its end a 404, or a body
sent without a Content-Type a 415.
"""
from typing import Any

_UNAUTHENTICATED = {"description": "No valid credentials: the token is missing, unknown, expired or revoked."}
_NO_SUCH_PAGE = {"description": "`page` is not a page of this list (not a number, or past the last page)."}
_UNSUPPORTED_MEDIA_TYPE = {"description": "The body's Content-Type is not JSON, form or multipart data."}


def add_framework_responses(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if any(requirement for requirement in operation.get("security", [])):
                responses.setdefault("401", _UNAUTHENTICATED)
            if any(parameter.get("in") == "query" and parameter.get("name") == "page"
                   for parameter in operation.get("parameters", [])):
                responses.setdefault("404", _NO_SUCH_PAGE)
            if "requestBody" in operation:
                responses.setdefault("415", _UNSUPPORTED_MEDIA_TYPE)
    return result
