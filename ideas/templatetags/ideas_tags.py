"""Template helpers for ideas pages: Markdown, status badges, idea table rows, patch values, query-string paging."""
import html
import json
from datetime import date
from functools import lru_cache
from typing import Any, Iterable

from django import template
from django.forms import BoundField
from django.http import QueryDict
from django.template.defaultfilters import urlencode
from django.urls import get_script_prefix, reverse
from django.utils import dateformat
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime
from django.utils.translation import get_language

from ideas.lifecycle import DECISION_REQUIRED, Status, allowed_targets
from ideas.markdown import render_markdown
from ideas.models import Idea

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
    # Plain str.format over escape(): format_html's per-argument lazy/safe checks dominated long tag lists.
    return mark_safe("".join(
        '<option value="{}"{}>{}</option>'.format(
            escape(value), " selected" if str(value) == current else "", escape(label)
        )
        for value, label in field.field.choices
    ))


@register.simple_tag
def idea_rows(ideas: Iterable[Idea], list_url: str) -> SafeString:
    """The <tr>s of the idea table. Built in Python, not template tags: list pages render 25+ rows and the
    template engine's per-variable lookups (and two URL reversals per row) were most of the page's cost."""
    language, script_prefix = get_language(), get_script_prefix()
    return mark_safe("".join(
        _idea_row_html(
            key=idea.key,
            title=idea.title,
            tag_names=tuple(tag.name for tag in idea.tags.all()),
            area_slug=idea.area.slug,
            area_name=idea.area.name,
            status=idea.status,
            pic=idea.area.pic.username,
            created_on=template_localtime(idea.created_at).date(),
            submitter=idea.submitter.username,
            list_url=list_url,
            language=language,
            script_prefix=script_prefix,
        )
        for idea in ideas
    ))


# Memoised on every value the row shows (the submission date already in the viewer's time zone, the language
# of its month name, the URL prefix of its links), so an edit, retag, area rename or PIC handover yields a new
# key, never a stale row. Escaping, date formatting and URL reversal cost ~150 µs per row; a hit, a dict lookup.
@lru_cache(maxsize=4096)
def _idea_row_html(*, key: str, title: str, tag_names: tuple[str, ...], area_slug: str, area_name: str,
                   status: str, pic: str, created_on: date, submitter: str, list_url: str, language: str | None,
                   script_prefix: str) -> SafeString:
    # Same URLs as Idea/Area.get_absolute_url, reversed from the key fields so the models need not be passed.
    url, area_url = reverse("idea_detail", args=[key]), reverse("area_board", args=[area_slug])
    # The stdlib escape gives the same text as Django's for these plain strings, without its lazy-string
    # wrapper, which was a third of the cost of a row.
    url, area_url, list_url = html.escape(url), html.escape(area_url), html.escape(list_url)
    tag_links = "".join(
        f'<a class="tag" href="{list_url}?tag={html.escape(urlencode(name))}">{html.escape(name)}</a>'
        for name in tag_names
    )
    tags = f'<div class="tags">{tag_links}</div>' if tag_names else ""
    return mark_safe(
        f'<tr><td><a class="key" href="{url}">{html.escape(key)}</a></td>'
        f'<td class="title-cell"><a href="{url}">{html.escape(title)}</a>{tags}</td>'
        f'<td class="hide-sm"><a href="{area_url}">{html.escape(area_name)}</a></td>'
        f"<td>{status_badge(status)}</td>"
        f'<td class="nowrap hide-sm">{html.escape(pic)}</td>'
        f'<td class="nowrap muted hide-sm">{dateformat.format(created_on, "M j, Y")}'
        f'<div class="small">by {html.escape(submitter)}</div></td></tr>'
    )
