"""Template helpers for ideas pages: Markdown, status badges, patch values, query-string paging."""
import json
from typing import Any

from django import template
from django.http import QueryDict
from django.utils.safestring import SafeString

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
