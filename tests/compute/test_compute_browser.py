"""End to end in headless Chromium: a review session on the desk — filter by area, decide three requests
inline (one by keyboard) while the running budget panel moves, bulk-approve the pilots — and the cycle
overview's granted bar going up with it."""
from datetime import timedelta

from django.test import Client

from compute import services
from ideas import services as idea_services


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


def _granted(page, pool: str = "h100") -> str:
    return page.locator(f"#budget-panel tr[data-pool={pool}] td.granted").inner_text()


def _still_requested(page) -> str:
    return page.locator("#budget-panel tr[data-pool=org] td.asked").inner_text()


def _panel_shows(page, *, granted: str, asked: str) -> None:
    """Wait for the budget panel (reloaded by htmx after a decision) to show these h100 / org figures."""
    page.wait_for_function(
        """([granted, asked]) => {
            const cell = (selector) => (document.querySelector(selector) || {}).innerText;
            return cell('#budget-panel tr[data-pool=h100] td.granted') === granted
                && cell('#budget-panel tr[data-pool=org] td.asked') === asked;
        }""",
        arg=[granted, asked],
    )


def test_a_review_session_on_the_desk(browser_page, live_server, screenshot, open_cycle, pool, area, other_area, pic, member, reviewer):
    idea = idea_services.idea_create(submitter=member, area=area, title="Top-2 routing", summary="s")
    fp4_idea = idea_services.idea_create(submitter=member, area=other_area, title="FP4 everywhere", summary="s")
    ask = dict(cycle=open_cycle, pool=pool, justification="Pilot **positive** over 3 seeds.")
    pilot_a, _ = services.request_submit(requester=member, area=area, gpu_hours=40, stage="pilot", **ask)
    scale_up, _ = services.request_submit(requester=pic, area=area, idea=idea, gpu_hours=300, stage="scale-up", **ask)
    pilot_b, _ = services.request_submit(requester=member, area=other_area, gpu_hours=25, stage="pilot", **ask)
    integration, _ = services.request_submit(requester=pic, area=other_area, idea=fp4_idea, gpu_hours=120, stage="integration",
                                             evidence_links=["https://wandb.ai/team/run"], **ask)
    page = browser_page
    _sign_in_as(page, reviewer, live_server.url)
    page.goto(f"/compute/cycles/{open_cycle.pk}/review/")
    assert page.locator("tr.desk-row").count() == 4 and _granted(page) == "0" and _still_requested(page) == "485"
    assert "scale-up without linked evidence" in page.locator(f"#request-{scale_up.pk}").inner_text()
    screenshot(page, "1-desk")
    _tables_fit(page)

    # Filter by area: the URL says so, only Routing's requests remain.
    page.select_option("#desk-filters select[name=area]", "routing")
    page.click("#desk-filters button[type=submit]")
    page.wait_for_url("**area=routing**")
    assert page.locator("tr.desk-row").count() == 2
    screenshot(page, "2-filtered")

    # 1. Trim the scale-up from the keyboard: the panel's granted goes from 0 to 200 without a reload.
    row = page.locator(f"#request-{scale_up.pk}")
    row.locator("input[name=comment]").fill("Pilot first, then the rest.")
    row.locator("input[name=gpu_hours]").fill("200")
    row.locator("input[name=gpu_hours]").press("Enter")  # Enter in the hours field trims, never approves
    page.wait_for_selector(f"#request-{scale_up.pk}.decided")
    _panel_shows(page, granted="200", asked="185")
    # 2. Approve the pilot with the keyboard: j moves to a row, a approves it.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.id") == f"request-{pilot_a.pk}"
    page.keyboard.press("a")
    page.wait_for_selector(f"#request-{pilot_a.pk}.decided")
    _panel_shows(page, granted="240", asked="145")
    screenshot(page, "3-two-decided")

    # 3. Refuse the integration request (all areas again), with its reason.
    page.goto(f"/compute/cycles/{open_cycle.pk}/review/")
    row = page.locator(f"#request-{integration.pk}")
    row.locator("input[name=comment]").fill("Needs an ablation first.")
    row.locator("button[value=refuse]").click()
    page.wait_for_selector(f"#request-{integration.pk}.decided")
    assert "Refused" in page.locator(f"#request-{integration.pk}").inner_text()
    _panel_shows(page, granted="240", asked="25")
    assert page.locator("#open-count").inner_text() == "1"

    # Bulk-approve the remaining pilot.
    page.reload()
    page.locator(f"#request-{pilot_b.pk} input[type=checkbox]").check()
    page.click("#bulk-approve button")
    page.wait_for_selector("text=Approved 1 pilot request: 25.00 GPU-h granted.")
    assert _granted(page) == "265" and _still_requested(page) == "0" and page.locator("tr.desk-row").count() == 0
    screenshot(page, "4-after-bulk")

    assert _bars(page, open_cycle.pk) == {"Requested": [145, 340], "Granted": [25, 240], "Used": [0, 0]}
    path = screenshot(page, "5-overview")
    assert path.stat().st_size > 20_000
    _tables_fit(page)

    # Some usage, then the area page (its ideas table included), the report and the ledger: every table fits its card.
    start = open_cycle.start + timedelta(hours=3)
    for key, gpus, hours, target in (("attempt-a", 8, 5, idea), ("attempt-b", 4, 2, None)):
        services.usage_charge_segment(attempt_key=key, segment_start=start, segment_end=start + timedelta(hours=hours),
                                      gpus=gpus, pool=pool, area=area, idea=target)
    for label, url in (("6-area", f"/compute/areas/routing/?cycle={open_cycle.pk}"), ("7-report", f"/compute/cycles/{open_cycle.pk}/report/"),
                       ("8-ledger", f"/compute/areas/routing/ledger/?cycle={open_cycle.pk}")):
        page.goto(url)
        _tables_fit(page)
        screenshot(page, label)
    assert page.locator("#ledger-total").inner_text() == "48" and page.locator("#table-ledger tbody tr").count() == 2
    page.goto(f"/compute/areas/routing/?cycle={open_cycle.pk}")
    assert f"{idea.key}\tTop-2 routing\tSubmitted\th100\t200\t40\t160" in page.locator("#table-ideas").inner_text()


def _tables_fit(page) -> None:
    """No table sticks out of its card or needs a horizontal scroll bar at 1280 px."""
    overflowing = page.evaluate("""() => [...document.querySelectorAll('.card table')].filter(table => {
        const card = table.closest('.card'), wrap = table.parentElement;
        return table.getBoundingClientRect().right > card.getBoundingClientRect().right + 1 || wrap.scrollWidth > wrap.clientWidth + 1;
    }).map(table => table.closest('.card').id || table.closest('.card').querySelector('h2').innerText)""")
    assert overflowing == [], f"tables wider than their card: {overflowing}"
