"""The API's JSON parser: DRF's, plus a 400 for bodies that are nested absurdly deep (Python's decoder
raises RecursionError on them, which was a 500) or that carry text the database cannot store, named by the
top-level field it sits in."""
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ParseError

from core.jsonkeys import UniqueKeysJSONParser
from core.text import describe, first_problem, printable


class SafeJSONParser(UniqueKeysJSONParser):
    """Repeated keys refused (UniqueKeysJSONParser), then depth and storable text checked."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body nests too deeply") from None
        problem = first_problem(data)
        if problem is not None:
            path, message = problem
            if not path:
                raise ParseError(f"JSON parse error - the body {message}")
            field, rest = path[0], path[1:]
            detail = f"{describe(rest)}: {message}" if rest else message
            raise serializers.ValidationError({printable(str(field)): [detail]})
        return data
