"""Helpers for HTML forms: services validate, forms show what the services said."""
from django import forms
from django.core.exceptions import ValidationError

from core.text import describe, first_problem


def parse_lines(text: str) -> list[str]:
    """The non-blank lines of a textarea, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def apply_service_error(form: forms.Form, error: ValidationError, renames: dict[str, str] | None = None) -> None:
    """Attach a service's field-keyed ValidationError to ``form``; unknown fields become form-wide errors."""
    renames = renames or {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, messages in error.message_dict.items():
        field = renames.get(name, name)
        form.add_error(field if field in form.fields else None, messages)


class StorableTextMixin:
    """A form mixin: every cleaned value (JSON parsed from a textarea included) is text the database can
    store; otherwise an error on the field that holds it, naming the nested key."""

    def clean(self) -> dict:
        cleaned = super().clean()  # type: ignore[misc]
        for name, value in list(cleaned.items()):
            problem = first_problem(value)
            if problem is not None:
                path, message = problem
                self.add_error(name, f"{describe(path)}: {message}" if path else message)  # type: ignore[attr-defined]
        return cleaned
