"""Markdown → sanitised HTML. Everything user-written goes through here before it reaches a page."""
from functools import lru_cache

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}
_URL_SCHEMES = {"http", "https", "mailto"}
# An idea page renders every comment on every view (~1.5 ms of CPU each; 100 comments made the page cost
# ~180 ms). The HTML depends on the text alone, so each process keeps the last renders; texts up to
# _MEMO_CHARS (most comments) are memoised, which bounds the memo to ~10 MB per process.
_MEMO_CHARS = 4_000


def render_markdown(text: str) -> SafeString:
    """HTML for ``text``; raw HTML is parsed by the sanitiser, so scripts, event handlers, SVG and
    ``javascript:`` URLs are dropped whatever the Markdown produced."""
    text = text or ""
    clean = _render_memoised(text) if len(text) <= _MEMO_CHARS else _render(text)
    return mark_safe(clean)  # noqa: S308 - nh3 output is sanitised HTML


def _render(text: str) -> str:
    html = markdown_lib.markdown(text, extensions=["fenced_code", "tables", "sane_lists"], output_format="html")
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


_render_memoised = lru_cache(maxsize=1024)(_render)
