"""End to end in headless Chromium: submit an idea, then triage it as the area's PIC and see the timeline."""
from ideas.lifecycle import Status
from ideas.models import Idea


def _sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

def _sign_out(page) -> None:
    page.click("nav button:has-text('Sign out')")
    page.wait_for_url("**/accounts/login/")

def test_submit_then_triage_as_pic(browser_page, screenshot, make_user, area, pic):
    page = browser_page
    make_user("bea")
    _sign_in(page, "bea", "pw-for-tests-1")
    page.click("text=Submit idea")
    page.fill("#id_title", "Latent MoE at width 64")
    page.select_option("#id_area", label="MoE routing")
    page.fill("#id_summary", "Route in a **64-wide** latent space.")
    page.fill("#id_recipe_patch", "moe.latent_size = 64")
    page.fill("#id_tags", "latent, moe")
    page.click("form button[type=submit]:has-text('Submit idea')")
    page.wait_for_url("**/ideas/IDEA-0001")
    assert page.locator("td.mono").first.inner_text() == "64"
    screenshot(page, "submitted")
    _sign_out(page)

    _sign_in(page, "pia", "pw-for-tests-1")
    page.goto("/ideas/IDEA-0001")
    page.fill("#move-note", "In scope, cheap ablation")
    page.click("#pic-actions button[value=triaged]")
    page.wait_for_selector(".alert-success")
    timeline = page.locator("#timeline").inner_text()
    assert "pia moved it from" in timeline and "Triaged" in timeline and "In scope, cheap ablation" in timeline
    path = screenshot(page, "triaged")
    assert path.stat().st_size > 10_000
    assert Idea.objects.get(key="IDEA-0001").status == Status.TRIAGED
