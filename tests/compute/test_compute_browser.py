"""End to end in headless Chromium: a reviewer approves a request in the queue (htmx, in place) and the
cycle overview's granted bar for that area goes up."""
from django.test import Client

from compute import services


def _sign_in_as(page, user, base_url: str) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}])


def _bars(page, cycle_id: int) -> dict[str, list]:
    # The first load fetches plotly.js (4.6 MB) from the live server; on a busy CI machine that takes a while.
    page.goto(f"/compute/cycles/{cycle_id}/", timeout=45_000)
    page.wait_for_function("document.getElementById('chart-areas').data !== undefined")
    traces = page.evaluate("document.getElementById('chart-areas').data.map(t => [t.name, t.y])")
    return dict(traces)


def test_approving_in_the_review_queue_raises_the_granted_bar(browser_page, live_server, screenshot, open_cycle, pool, area, member, reviewer):
    services.request_submit(requester=member, cycle=open_cycle, pool=pool, area=area, gpu_hours=120,
                            justification="Pilot **positive** over 3 seeds.", stage="scale-up",
                            evidence_links=["/ideas/IDEA-0001"])
    page = browser_page
    _sign_in_as(page, reviewer, live_server.url)
    assert _bars(page, open_cycle.pk) == {"Requested": [120], "Granted": [0], "Used": [0]}

    page.click("nav.subnav >> text=Review queue")
    row = page.locator("article.review-item").first
    assert "Pilot positive over 3 seeds." in row.inner_text() and "/ideas/IDEA-0001" in row.inner_text()
    screenshot(page, "queue-before")
    row.locator("button[value=approve]").click()
    page.wait_for_selector("article.review-item.decided >> text=Approved")
    assert "grant 0 → 120 GPU-h" in page.locator("article.review-item.decided").inner_text()
    screenshot(page, "queue-after")

    assert _bars(page, open_cycle.pk) == {"Requested": [120], "Granted": [120], "Used": [0]}
    path = screenshot(page, "overview-after")
    assert path.stat().st_size > 20_000
