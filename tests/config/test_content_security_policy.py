"""Issue 12.11: every response carries a Content-Security-Policy that the pages satisfy: htmx, plotly and
app.js load, charts draw, and the browser reports no violation on the main pages."""
from django.conf import settings
from django.test import Client

from experiments import services as experiment_services
from ideas import services as idea_services
from tests.experiments.finished_runs import finish_study

POLICY_PARTS = ("script-src 'self'", "object-src 'none'", "frame-ancestors 'none'")


def test_the_main_pages_satisfy_the_policy(browser_page, live_server, pic, area, fast_baseline, screenshot):
    idea = idea_services.idea_create(submitter=pic, area=area, title="Lower LR", summary="Why.",
                                     recipe_patch={"optim.lr": 0.002})
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline=fast_baseline.name,
                                             ideas=[idea.key], seeds=[0], max_steps=50)
    finish_study(study)
    signed_in = Client()
    signed_in.force_login(pic)
    browser_page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                                       "value": signed_in.cookies[settings.SESSION_COOKIE_NAME].value}])
    violations: list[str] = []
    browser_page.on("console", lambda message: violations.append(message.text)
                    if "Content Security Policy" in message.text else None)

    for path in ("/", "/ideas/", f"/ideas/{idea.key}/", "/compute/", "/inbox/", "/experiments/"):
        response = browser_page.goto(path, wait_until="load")
        assert response.status == 200, path
        assert all(part in response.headers["content-security-policy"] for part in POLICY_PARTS), path
        assert browser_page.evaluate("typeof window.htmx") == "object", path
    browser_page.goto(f"/experiments/studies/{study.pk}/", wait_until="load")
    browser_page.wait_for_selector("#chart-train_loss .main-svg", timeout=60_000)  # plotly drew under the policy
    screenshot(browser_page, "study page under the content security policy")
    assert violations == []


def test_an_inline_script_is_refused_by_the_browser(browser_page):
    """The policy is not decorative: a script injected into a page would not run."""
    violations: list[str] = []
    browser_page.on("console", lambda message: violations.append(message.text))
    browser_page.goto("/accounts/login/")
    browser_page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.injected = true'; document.body.appendChild(s); }""")
    assert browser_page.evaluate("window.injected === undefined")
    assert any("Content Security Policy" in text for text in violations)
