"""Template helpers for compute pages: table cells, GPU-hour numbers and the idea page's budget panel."""
from decimal import Decimal

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from compute import permissions, selectors
from ideas.models import Area, Idea

register = template.Library()
TENTH = Decimal("0.1")


@register.filter
def gpu_hours(value) -> str:
    """``1234.5`` → ``1,234.5``; whole numbers without decimals; "—" for no value; never ``-0``."""
    if value is None or value == "":
        return "—"
    shown = Decimal(value).quantize(TENTH) + 0  # rounded first, then + 0 turns -0.0 into 0.0
    return f"{shown:,.0f}" if shown == shown.to_integral_value() else f"{shown:,.1f}"


@register.filter
def table_cell(value):
    """A table cell: areas link to their compute page, ideas to the idea, amounts are formatted."""
    if isinstance(value, Area):
        return format_html('<a href="{}">{}</a>', reverse("compute:budget", args=[value.slug]), value.name)
    if isinstance(value, Idea):
        return format_html('<a class="key" href="{}">{}</a>', value.get_absolute_url(), value.key)
    if isinstance(value, Decimal):
        return gpu_hours(value)
    return "—" if value is None else value


@register.filter
def is_numeric(value) -> bool:
    return isinstance(value, (Decimal, int, float)) and not isinstance(value, bool)


@register.simple_tag
def idea_budget(idea: Idea) -> selectors.IdeaBudget:
    return selectors.idea_budget(idea)


@register.filter
def percent_of(part, whole) -> int:
    """``part`` as a whole percentage of ``whole``, clamped to 0..100 (for progress bars)."""
    if not whole:
        return 0
    return max(0, min(100, round(100 * Decimal(part) / Decimal(whole))))


@register.filter
def lookup(mapping, key):
    """``mapping[key]``, or None where the mapping lacks it (or is missing from the context)."""
    return mapping.get(key) if mapping else None


@register.filter
def is_compute_reviewer(user) -> bool:
    return permissions.is_reviewer(user)


@register.filter
def age(moment) -> str:
    """How long ago, in its largest unit only ("3 days", not "3 days, 4 hours"): the desk's Age column."""
    return timesince(moment).split(",")[0]


@register.simple_tag
def sort_query(query, column: str, current: str) -> str:
    """The desk's query string sorted by ``column``: descending first for amounts and age, toggled when it
    is already the sort; filters kept, back to page 1."""
    params = query.copy()
    params.pop("page", None)
    params["sort"] = column if current == f"-{column}" else f"-{column}"
    return params.urlencode()


@register.simple_tag
def page_query(query, number: int) -> str:
    params = query.copy()
    params["page"] = number
    return params.urlencode()
