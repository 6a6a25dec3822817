"""JSON objects with a key written twice: ``json.loads`` keeps the last value silently, so a recipe patch with
``"moe.latent_size": 128`` and later ``"moe.latent_size": 64`` would quietly mean 64. Parsers here refuse it,
naming the key (``object_pairs_hook``)."""
from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class DuplicateKeyError(ValueError):
    def __init__(self, key: str):
        self.key = key
        super().__init__(f"{key} is set twice in one JSON object; keep one value")


def unique_keys_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that raises DuplicateKeyError on the first repeated key."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(key)
        result[key] = value
    return result


class UniqueKeysJSONParser(JSONParser):
    """The API's JSON parser: as DRF's, but a repeated key anywhere in the body is a 400 naming it."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            return json.loads(stream.read().decode(encoding), object_pairs_hook=unique_keys_object)
        except ValueError as error:  # DuplicateKeyError, JSONDecodeError and UnicodeDecodeError alike
            raise ParseError(f"JSON parse error - {error}") from None
