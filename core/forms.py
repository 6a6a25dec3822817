"""Helpers for HTML forms: services validate, forms show what the services said."""
from django import forms
from django.core.exceptions import ValidationError


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
