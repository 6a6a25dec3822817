"""Text the database and every later reader can hold: valid Unicode (no lone surrogates, which JSON's
``\\ud800`` escapes can smuggle in) without NUL characters (PostgreSQL refuses them), in nesting a reader
can walk without exhausting the stack.

One walk (:func:`first_problem`) is used by the API's JSON parser, the serializer field, the form mixin and
the patch checks, so every path refuses the same input with the same words.
"""
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ValidationError

MAX_JSON_DEPTH = 64  # far more than any of our documents nest; deep enough never to stop a real client
NOT_UTF8 = "must be valid Unicode text (it contains a lone surrogate or a NUL character that cannot be stored)"


def is_storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def first_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[list[Any], str] | None:
    """(path, message) of the first string or key in ``value`` that cannot be stored, or of where it nests
    deeper than ``max_depth``; None when all is well. Iterative, so depth itself cannot crash it."""
    for path, item in _walk(value, max_depth):
        if item is _TOO_DEEP:
            return path, f"nests deeper than {max_depth} levels"
        if isinstance(item, str) and not is_storable_text(item):
            return path, NOT_UTF8
    return None


_TOO_DEEP = object()


def _walk(value: Any, max_depth: int) -> Iterator[tuple[list[Any], Any]]:
    stack: list[tuple[list[Any], Any]] = [([], value)]
    while stack:
        path, item = stack.pop()
        if len(path) > max_depth:
            yield path, _TOO_DEEP
            return
        if isinstance(item, dict):
            for key, child in item.items():
                yield path + [key], key  # keys are text too
                stack.append((path + [key], child))
        elif isinstance(item, list):
            stack.extend((path + [index], child) for index, child in enumerate(item))
        else:
            yield path, item


def printable(text: str) -> str:
    """``text`` safe to echo back in an error message: lone surrogates as ``\\udXXX`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def describe(path: list[Any]) -> str:
    return printable(".".join(str(part) for part in path))


def validate_storable_text(value: Any) -> None:
    """Django validator for a text field (or a JSON value): ValidationError naming the nested key if any."""
    problem = first_problem(value)
    if problem is not None:
        path, message = problem
        where = describe(path)
        raise ValidationError(f"{where}: {message}" if where else message, code="invalid_text")
