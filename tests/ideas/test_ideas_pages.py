"""Server-rendered pages: rendering, forms, htmx fragments, CSRF, XSS and pinned query counts."""
import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from ideas import services
from ideas.lifecycle import Status
from ideas.models import Comment, Idea

XSS_CORPUS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "[click me](javascript:alert(1))",
    "<a href=\"javascript:alert(1)\">link</a>",
    "<svg onload=alert(1)><circle r=1></circle></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<div style=\"background:url(javascript:alert(1))\">styled</div>",
    "<math><mtext><img src=x onerror=alert(1)></mtext></math>",
]


class _ActiveContent(HTMLParser):
    """Collects what a browser would execute: script/svg/iframe/math elements (other than our own
    static scripts), on* event-handler attributes, javascript: URLs and inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and (attributes.get("src") or "").startswith("/static/"):
            return
        if tag in {"script", "svg", "iframe", "math", "object", "embed"}:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"{tag}[{name}]")
            url = (value or "").strip().lower()
            # base.html's own `<link rel=icon href="data:,">` (an empty icon) is the one data: URL allowed.
            if url.startswith("javascript:") or (url.startswith("data:") and tag != "link"):
                self.found.append(f"{tag}[{name}={value}]")


def _active_content(html: str) -> list[str]:
    parser = _ActiveContent()
    parser.feed(html)
    return parser.found


@pytest.fixture
def web(client_for, submitter):
    return client_for(submitter)


@pytest.mark.parametrize("payload", XSS_CORPUS)
def test_xss_payloads_render_inert(web, make_idea, member, payload):
    idea = make_idea(title=payload[:200], summary=f"Intro\n\n{payload}", hypothesis=payload)
    services.comment_create(idea=idea, author=member, body=payload)
    for url in (idea.get_absolute_url(), "/ideas/", "/", f"/areas/{idea.area.slug}/"):
        assert _active_content(web.get(url).content.decode()) == [], url


def test_markdown_is_rendered(web, make_idea):
    idea = make_idea(summary="Use **bold** and [docs](https://example.org/a)")
    html = web.get(idea.get_absolute_url()).content.decode()
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.org/a" rel="noopener noreferrer nofollow">docs</a>' in html


def test_pasted_keys_resolve_directly(web, idea):
    response = web.get("/ideas/IDEA-0001")
    assert response.status_code == 200 and b"Latent MoE with latent size 64" in response.content
    assert web.get("/ideas/idea-1").headers["Location"] == "/ideas/IDEA-0001"
    assert web.get("/ideas/IDEA-0404").status_code == 404


def test_pages_need_sign_in(client, idea):
    for url in ("/", "/ideas/", idea.get_absolute_url(), "/areas/", "/ideas/new/"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/accounts/login/")


def test_every_page_renders(web, idea, area):
    for url in ("/", "/ideas/", "/ideas/new/", idea.get_absolute_url(), f"/ideas/{idea.key}/edit/", "/areas/",
                f"/areas/{area.slug}/", "/api/", "/accounts/login/"):
        assert web.get(url).status_code == 200, url


def test_submitting_through_the_form(web, area):
    response = web.post("/ideas/new/", {"title": "Chunk size 128", "area": area.pk, "summary": "Bigger chunks.",
                                        "recipe_patch": "mamba.chunk_size = 128\nfp4.enabled = true", "tags": "mamba, speed"})
    assert response.status_code == 302 and response.headers["Location"] == "/ideas/IDEA-0001"
    idea = Idea.objects.get()
    assert idea.recipe_patch == {"mamba.chunk_size": 128, "fp4.enabled": True}


def test_form_errors_name_the_field_and_keep_the_input(web, area):
    response = web.post("/ideas/new/", {"title": "", "area": area.pk, "summary": "Something",
                                        "recipe_patch": "moe.latnt_size = 5"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "This field is required" in html and "unknown key &#x27;moe.latnt_size&#x27;" in html
    assert "moe.latnt_size = 5" in html and not Idea.objects.exists()


def test_the_list_filters_and_pages(web, make_idea, pic):
    for index in range(30):
        make_idea(title=f"Numbered idea {index:02d}")
    services.idea_transition(idea=Idea.objects.get(number=3), to_status=Status.TRIAGED, by=pic)
    first = web.get("/ideas/").content.decode()
    assert "IDEA-0030" in first and "IDEA-0005" not in first and "Page 1 of 2" in first
    assert "IDEA-0005" in web.get("/ideas/?page=2").content.decode()
    triaged = web.get("/ideas/?status=triaged").content.decode()
    assert "IDEA-0003" in triaged and "IDEA-0004" not in triaged
    fragment = web.get("/ideas/?q=Numbered+07", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "IDEA-0008" in fragment and "IDEA-0009" not in fragment


def test_the_list_page_has_a_constant_query_count(web, make_idea, django_assert_max_num_queries):
    for index in range(30):
        make_idea(title=f"Idea {index}", tags=[f"tag{index}", "shared"])
    # session, user, filter areas, filter tags, count, page, tags prefetch
    with django_assert_max_num_queries(8):
        response = web.get("/ideas/?tag=shared")
    assert response.status_code == 200


def test_pic_sees_action_buttons_others_do_not(client_for, pic, member, idea):
    assert b'value="triaged"' in client_for(pic).get(idea.get_absolute_url()).content
    assert b'value="triaged"' not in client_for(member).get(idea.get_absolute_url()).content


def test_pic_triages_from_the_detail_page(client_for, pic, idea):
    response = client_for(pic).post(f"/ideas/{idea.key}/move/", {"to_status": "triaged", "note": "looks good"})
    assert response.status_code == 302
    idea.refresh_from_db()
    assert idea.status == Status.TRIAGED


def test_illegal_move_from_the_page_is_409_with_the_reason(client_for, pic, idea):
    response = client_for(pic).post(f"/ideas/{idea.key}/move/", {"to_status": "in_integration"})
    assert response.status_code == 409 and b"allowed: triaged, rejected, parked" in response.content


def test_non_pic_move_from_the_page_is_403(client_for, member, idea):
    assert client_for(member).post(f"/ideas/{idea.key}/move/", {"to_status": "triaged"}).status_code == 403


def test_rejecting_without_evidence_shows_the_decision_error(client_for, pic, idea):
    response = client_for(pic).post(f"/ideas/{idea.key}/move/", {"to_status": "rejected", "decision_summary": ""})
    assert response.status_code == 400 and b"needs a decision record" in response.content


def test_board_moves_with_htmx(client_for, pic, idea):
    response = client_for(pic).post(f"/areas/{idea.area.slug}/move/", {"key": idea.key, "to_status": "triaged"},
                                    HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b'id="board"' in response.content and b"<html" not in response.content
    idea.refresh_from_db()
    assert idea.status == Status.TRIAGED


def test_board_refuses_ideas_of_another_area(client_for, other_pic, other_area, idea):
    response = client_for(other_pic).post(f"/areas/{other_area.slug}/move/", {"key": idea.key, "to_status": "triaged"},
                                          HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    idea.refresh_from_db()
    assert idea.status == Status.SUBMITTED


def test_comments_post_with_htmx(web, idea):
    response = web.post(f"/ideas/{idea.key}/comments/", {"body": "Which **seeds**?"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"<strong>seeds</strong>" in response.content
    assert Comment.objects.get().body == "Which **seeds**?"


def test_watch_toggle(client_for, member, idea):
    client = client_for(member)
    assert b"Watching" in client.post(f"/ideas/{idea.key}/watch/", {"watching": "1"}, HTTP_HX_REQUEST="true").content
    assert idea.watchers.filter(pk=member.pk).exists()
    client.post(f"/ideas/{idea.key}/watch/", {"watching": "0"})
    assert not idea.watchers.filter(pk=member.pk).exists()


def test_volunteer_and_hand_over_from_the_areas_page(client_for, pic, member, area):
    client_for(member).post(f"/areas/{area.slug}/volunteer/", {"volunteer": "1"})
    assert area.volunteers.filter(pk=member.pk).exists()
    forbidden = client_for(member).post(f"/areas/{area.slug}/handover/", {f"{area.slug}-to_user": member.pk})
    assert forbidden.status_code == 403
    client_for(pic).post(f"/areas/{area.slug}/handover/", {f"{area.slug}-to_user": member.pk, f"{area.slug}-note": ""})
    area.refresh_from_db()
    assert area.pic == member


@pytest.mark.parametrize("url, data", [
    ("/ideas/new/", {"title": "t", "summary": "s"}),
    ("/ideas/IDEA-0001/comments/", {"body": "hi"}),
    ("/ideas/IDEA-0001/move/", {"to_status": "triaged"}),
])
def test_posts_without_a_csrf_token_are_403(client_for, pic, idea, url, data):
    client = client_for(pic, enforce_csrf_checks=True)
    assert client.post(url, data).status_code == 403
    idea.refresh_from_db()
    assert idea.status == Status.SUBMITTED and not Comment.objects.exists()


def test_posts_with_the_csrf_token_succeed(pic, idea):
    client = Client(enforce_csrf_checks=True)
    client.force_login(pic)
    page = client.get(idea.get_absolute_url()).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(f"/ideas/{idea.key}/comments/", {"body": "ok", "csrfmiddlewaretoken": token}).status_code == 302


def test_extra_panels_from_settings_are_rendered(web, idea, settings, tmp_path):
    (tmp_path / "panel_probe.html").write_text("<section id='probe'>panel for {{ idea.key }}</section>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}]
    settings.FLIGHTDECK_IDEA_PANELS = ["panel_probe.html"]
    assert b"panel for IDEA-0001" in web.get(idea.get_absolute_url()).content
