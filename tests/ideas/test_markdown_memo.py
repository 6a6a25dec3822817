"""The per-process memo of rendered Markdown (ideas/markdown.py): repeated views reuse the sanitised HTML,
and a memoised render is exactly as safe as a fresh one."""
from ideas import markdown
from ideas.markdown import render_markdown

HOSTILE = 'Hi **there** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>'


def test_a_repeated_text_is_rendered_once_and_stays_sanitised():
    markdown._render_memoised.cache_clear()
    first, second = render_markdown(HOSTILE), render_markdown(HOSTILE)
    assert first == second
    assert "<strong>there</strong>" in second
    assert "<script" not in second and "javascript:" not in second and "onerror" not in second
    info = markdown._render_memoised.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_an_edited_text_gets_its_own_html():
    assert render_markdown("*old*") != render_markdown("*new*")
    assert "<em>new</em>" in render_markdown("*new*")


def test_long_texts_are_rendered_without_filling_the_memo():
    markdown._render_memoised.cache_clear()
    long_text = "word " * 1_000  # 5,000 characters, above the memo's limit
    assert render_markdown(long_text).startswith("<p>word word")
    assert markdown._render_memoised.cache_info().currsize == 0
