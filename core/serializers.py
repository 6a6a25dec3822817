"""Serializer helpers shared by every app's API."""
from typing import Any

from rest_framework import serializers

from core.text import describe, first_problem, printable


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is a 400 naming it instead of silently ignored data."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                allowed = ", ".join(self.fields)
                raise serializers.ValidationError(
                    {printable(name): [f"unknown field; allowed: {allowed}"] for name in unknown})
        values = super().to_internal_value(data)
        _refuse_unstorable_text(values)
        return values


def _refuse_unstorable_text(values: dict[str, Any]) -> None:
    """Every parsed value, nested keys included, is text the database can store (whatever the parser was)."""
    for name, value in values.items():
        problem = first_problem(value)
        if problem is not None:
            path, message = problem
            raise serializers.ValidationError({name: [f"{describe(path)}: {message}" if path else message]})
