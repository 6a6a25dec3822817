"""Template helpers for ideas pages: Markdown, status badges, patch values, query-string paging."""
import json
from typing import Any

from django import template
from django.http import QueryDict
from django.forms import BoundField
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from ideas.lifecycle import DECISION_REQUIRED, Status, allowed_targets
from ideas.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return render_markdown(text)


@register.filter
def status_label(status: str) -> str:
    return Status(status).label if status in Status.values else status


@register.filter
def patch_value(value: Any) -> str:
    """A recipe patch value as JSON (so `true`, `128`, `"bf16"` read the way they are typed)."""
    return json.dumps(value)


@register.simple_tag(takes_context=True)
def query_with(context: dict, **changes: Any) -> str:
    """The current query string with ``changes`` applied (used by pagination links)."""
    query: QueryDict = context["request"].GET.copy()
    for name, value in changes.items():
        query[name] = value
    return query.urlencode()


@register.filter
def quick_moves(status: str) -> list[str]:
    """Targets of ``status`` that need no decision record (one click on the board)."""
    return [target for target in allowed_targets(status) if target not in DECISION_REQUIRED]


@register.filter
def needs_decision_to_close(status: str) -> bool:
    return any(target in DECISION_REQUIRED for target in allowed_targets(status))


@register.simple_tag
def status_badge(status: str) -> SafeString:
    """The coloured badge of a status. A tag, not an include: list pages render one per row."""
    return format_html('<span class="badge badge-{}">{}</span>', status, status_label(status))


@register.simple_tag
def select_options(field: BoundField) -> SafeString:
    """<option>s of a choice field with the bound value selected; cheaper than widget templates for long lists."""
    current = str(field.value() or "")
    return format_html_join(
        "", '<option value="{}"{}>{}</option>',
        ((value, mark_safe(" selected") if str(value) == current else "", label) for value, label in field.field.choices),
    )
