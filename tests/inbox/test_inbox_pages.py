"""The inbox page, its htmx actions and the nav badge: through Django's test client and headless Chromium."""
import re

from django.db import connection
from playwright.sync_api import expect
from django.test.utils import CaptureQueriesContext

from inbox import selectors
from inbox.models import Message
from tests.inbox.conftest import PASSWORD


def _htmx(client, url: str):
    return client.post(url, headers={"HX-Request": "true"})


def test_the_inbox_lists_unread_messages_first_and_in_bold(client, submitter, message_for):
    old = message_for(submitter, "Old news")
    message_for(submitter, "Fresh news")
    Message.objects.filter(pk=old.pk).update(read_at=old.created_at)
    newest_read = message_for(submitter, "Newest but read")
    Message.objects.filter(pk=newest_read.pk).update(read_at=newest_read.created_at)
    client.force_login(submitter)

    html = client.get("/inbox/").content.decode()

    subjects = re.findall(r'class="inbox-subject"[^>]*>([^<]+)<', html)
    assert subjects == ["Fresh news", "Newest but read", "Old news"]
    assert html.count('class="inbox-message unread"') == 1
    assert re.search(r'id="nav-inbox".*?<span class="nav-count"[^>]*>1</span>', html, re.S)


def test_mark_read_by_htmx_swaps_the_row_and_the_badge(client, submitter, message_for):
    message = message_for(submitter, "Study finished")
    message_for(submitter, "Another")
    client.force_login(submitter)

    response = _htmx(client, f"/inbox/{message.pk}/read/")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="message-{message.pk}" class="inbox-message"' in html and "Mark read" not in html.split("nav-inbox")[0]
    assert 'id="nav-inbox"' in html and 'hx-swap-oob="true"' in html and ">1</span>" in html
    assert selectors.unread_count(submitter) == 1


def test_mark_all_read_by_htmx_rerenders_the_list_without_a_badge(client, submitter, message_for):
    for subject in ("One", "Two"):
        message_for(submitter, subject)
    client.force_login(submitter)

    html = _htmx(client, "/inbox/read-all/").content.decode()

    assert 'id="inbox-messages"' in html and "unread" not in re.sub(r"\d+ unread", "", html.split("nav-inbox")[0])
    assert 'class="nav-count"' not in html
    assert selectors.unread_count(submitter) == 0


def test_without_htmx_the_actions_redirect_back_to_the_inbox(client, submitter, message_for):
    message = message_for(submitter)
    client.force_login(submitter)
    assert client.post(f"/inbox/{message.pk}/read/").url == "/inbox/"
    response = client.post("/inbox/read-all/", follow=True)
    assert "Marked 0 messages read." in response.content.decode()


def test_opening_a_message_marks_it_read_and_follows_its_link(client, submitter, message_for):
    message = message_for(submitter, link="/ideas/IDEA-0001")
    client.force_login(submitter)
    response = client.get(f"/inbox/{message.pk}/")
    assert response.status_code == 302 and response.url == "/ideas/IDEA-0001"
    message.refresh_from_db()
    assert not message.is_unread


def test_opening_a_message_never_redirects_off_the_site(client, submitter, message_for):
    message = message_for(submitter, link="https://evil.example/")
    client.force_login(submitter)
    assert client.get(f"/inbox/{message.pk}/").url == "/inbox/"


def test_it_refuses_someone_elses_message_as_not_found(client, submitter, member, message_for):
    theirs = message_for(member)
    client.force_login(submitter)
    assert client.get(f"/inbox/{theirs.pk}/").status_code == 404
    assert client.post(f"/inbox/{theirs.pk}/read/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_unread


def test_it_refuses_get_on_actions_and_strangers_on_the_page(client, submitter, message_for):
    message = message_for(submitter)
    assert client.get("/inbox/").status_code == 302  # to the sign-in page
    client.force_login(submitter)
    assert client.get(f"/inbox/{message.pk}/read/").status_code == 405
    assert client.get("/inbox/read-all/").status_code == 405


def test_the_email_setting_turns_email_off_and_on(client, submitter):
    client.force_login(submitter)
    response = client.post("/inbox/email/", follow=True)  # an unticked box is not sent at all
    assert "Email notifications off" in response.content.decode() and not selectors.email_enabled(submitter)
    checkbox = re.search(r'<input[^>]*name="email"[^>]*>', response.content.decode()).group()
    assert "checked" not in checkbox
    client.post("/inbox/email/", {"email": "on"})
    assert selectors.email_enabled(submitter)


def test_the_home_page_shows_the_latest_messages_linking_through_the_inbox(client, submitter, message_for):
    message = message_for(submitter, "Study finished: succeeded")
    client.force_login(submitter)
    html = client.get("/").content.decode()
    assert f'<strong><a href="/inbox/{message.pk}/">Study finished: succeeded</a></strong>' in html


def test_the_nav_badge_costs_one_count_query_per_page(client, submitter, message_for):
    for _ in range(3):
        message_for(submitter)
    client.force_login(submitter)
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/ideas/").content.decode()
    inbox_queries = [q["sql"] for q in queries if "inbox_message" in q["sql"]]
    assert len(inbox_queries) == 1 and inbox_queries[0].startswith("SELECT COUNT(*)")
    assert re.search(r'<span class="nav-count"[^>]*>3</span>', html)


def test_the_inbox_in_a_browser(browser_page, screenshot, submitter, message_for, live_server):
    page = browser_page
    message_for(submitter, "[IDEA-0001] pia moved Latent MoE", kind=Message.Kind.IDEA_TRANSITION,
                body="pia moved IDEA-0001: Latent MoE\nStatus: Submitted → Triaged\nNote: in scope")
    message_for(submitter, "[study-3] Ablation of IDEA-0001 succeeded", kind=Message.Kind.STUDY_FINISHED,
                body="study-3 Ablation of IDEA-0001 (ablation) finished: succeeded.\nRuns: 4 succeeded.")
    read = message_for(submitter, "Compute request #7 for IDEA-0001 trimmed: 60 of 100 GPU-h",
                       kind=Message.Kind.REQUEST_REVIEWED, body="rita trimmed request #7.")
    Message.objects.filter(pk=read.pk).update(read_at=read.created_at)
    page.goto("/accounts/login/")
    page.fill("#id_username", "sam")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.goto("/inbox/")
    assert page.inner_text("#nav-inbox .nav-count") == "2"
    screenshot(page, "inbox with two unread")

    page.locator(".inbox-message.unread button:has-text('Mark read')").first.click()
    page.wait_for_function("document.querySelector('#nav-inbox .nav-count').textContent === '1'")
    page.click("button:has-text('Mark all read')")
    page.wait_for_selector("#nav-inbox .nav-count", state="detached")
    # The badge (out-of-band) and the list are swapped separately: wait for the list too.
    expect(page.locator(".inbox-message.unread")).to_have_count(0)
    screenshot(page, "inbox all read")
