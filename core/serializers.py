"""Serializer helpers shared by every app's API."""
from typing import Any

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is a 400 naming it instead of silently ignored data."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                allowed = ", ".join(self.fields)
                raise serializers.ValidationError({name: [f"unknown field; allowed: {allowed}"] for name in unknown})
        return super().to_internal_value(data)
