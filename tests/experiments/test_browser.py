"""In headless Chromium: launch an ablation from an idea page and watch a real worker finish it; resolve
a conflict in the new-study form; the study page draws every chart (screenshots for people to look at)."""
import pytest
from django.conf import settings
from django.test import Client

from experiments import services
from experiments.models import RunStatus, Study
from ideas import services as idea_services
from ideas.lifecycle import Status
from tests.experiments.finished_runs import finish_study

CHARTS = ("train_loss", "val_loss", "final_val_loss", "moe_imbalance", "fp4_error", "tokens_per_s", "peak_mem_mb")


def _sign_in(page, user, live_server) -> None:
    """Reuse a Django session instead of typing a password (users here have none, to keep hashing out)."""
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])


def _charts_drawn(page) -> None:
    for name in CHARTS:
        page.wait_for_selector(f"#chart-{name} .main-svg", state="attached")


@pytest.mark.timeout(240)
def test_launch_an_ablation_from_the_idea_page_and_watch_it_finish(celery_worker, browser_page, live_server, screenshot,
                                                                   pic, make_idea, fast_baseline):
    page = browser_page
    idea = make_idea("Latent MoE", {"moe.latent_size": 32})
    _sign_in(page, pic, live_server)

    page.goto(f"/ideas/{idea.key}")
    panel = page.locator("#experiments-panel")
    panel.locator("#id_seeds").fill("0")  # one seed keeps the test short; the verdict then warns about it
    panel.locator("#id_max_steps").fill("2")
    panel.locator("button:has-text('Run ablation')").click()
    page.wait_for_url("**/experiments/studies/*/", timeout=60_000)  # launching plans every run with modelzoo
    assert page.locator(".alert-success").inner_text().startswith("Launched study-")
    screenshot(page, "launched")

    # The grid polls every 2 s; the verdict and charts poll every 5 s until the study is done.
    page.wait_for_selector("#study-progress .badge.run-succeeded >> nth=0", timeout=200_000)
    page.wait_for_function("() => !document.querySelector('[hx-trigger^=\"every\"]')", timeout=200_000)
    assert page.locator("#study-progress .card-header .badge").inner_text() == "Succeeded"
    assert "val loss over 1 seed" in page.locator("#verdict .verdict").inner_text()
    assert "fewer than 2 seeds" in page.locator("#verdict .warnings").inner_text()
    page.wait_for_selector("#chart-train_loss .main-svg", state="attached")
    path = screenshot(page, "finished")
    assert path.stat().st_size > 30_000
    study = Study.objects.get()
    assert set(study.runs.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}

    page.goto(f"/ideas/{idea.key}")
    assert study.title in page.locator("#experiments-panel").inner_text()


def test_resolve_a_conflict_in_the_new_study_form_and_launch(browser_page, live_server, screenshot, pic, make_idea,
                                                             fast_baseline):
    page = browser_page
    fast = make_idea("Fast LR", {"optim.lr": 0.01, "moe.latent_size": 32})
    slow = make_idea("Slow LR", {"optim.lr": 0.001})
    for idea in (fast, slow):
        for status in (Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION):
            idea_services.idea_transition(idea=idea, to_status=status, by=pic)
    _sign_in(page, pic, live_server)

    page.goto("/experiments/studies/new/")
    page.check(f"input[value='{fast.key}']")
    page.check(f"input[value='{slow.key}']")
    conflict = page.locator("[data-conflict='optim.lr']")
    conflict.wait_for()
    assert page.locator("button:has-text('Launch study')").is_disabled()
    screenshot(page, "conflict")

    conflict.locator("label:has-text('0.001')").click()
    page.wait_for_selector("[data-conflict]", state="detached")
    page.check("#id_leave_one_out")
    page.wait_for_selector("text=all-" + slow.key)
    screenshot(page, "resolved")
    page.click("button:has-text('Launch study')")
    page.wait_for_url("**/experiments/studies/*/", timeout=60_000)  # launching plans every run with modelzoo

    study = Study.objects.get()
    assert study.resolutions == {"optim.lr": 0.001} and study.leave_one_out
    assert [arm.name for arm in study.arms.all()] == ["baseline", "all", f"all-{fast.key}", f"all-{slow.key}"]


def test_the_study_page_draws_every_chart(browser_page, live_server, screenshot, pic, make_idea, fast_baseline):
    page = browser_page
    ideas = [make_idea("Latent MoE", {"moe.latent_size": 32}), make_idea("Lower LR", {"optim.lr": 0.002})]
    study = services.study_launch(user=pic, kind="integration", baseline="tiny-fast", ideas=[i.key for i in ideas],
                                  seeds=[0, 1, 2], max_steps=1000, leave_one_out=True)
    finish_study(study, steps=1000, eval_every=50)  # more points than a line keeps: LTTB is on the path
    _sign_in(page, pic, live_server)

    page.goto(f"/experiments/studies/{study.pk}/", timeout=60_000)  # a cold page reads every point
    _charts_drawn(page)
    assert "integration beats baseline by" in page.locator("#verdict").inner_text()
    screenshot(page, "study")

    page.select_option("#smooth", "0.9")
    page.wait_for_selector("#smooth >> option[value='0.9'][selected]", state="attached")
    _charts_drawn(page)

    run = study.arms.get(name="all").runs.get(seed=0)
    page.goto(f"/experiments/runs/{run.pk}/")
    assert "moe.latent_size" in page.locator("text=Config vs baseline >> xpath=../..").inner_text()
    screenshot(page, "run")


def test_the_corpora_page_and_a_blend_study_with_per_corpus_charts(browser_page, live_server, screenshot, pic,
                                                                   make_idea, fast_baseline):
    page = browser_page
    idea = make_idea("More docs in the mix", {"data.blend": {"stdlib": 0.5, "python-docs": 0.5}})
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[0, 1],
                                  max_steps=100)
    finish_study(study, steps=100, corpora=("python-docs", "stdlib"))
    _sign_in(page, pic, live_server)

    page.goto("/experiments/corpora/")
    assert "python-docs" in page.locator("table").inner_text()
    screenshot(page, "corpora")

    page.goto(f"/experiments/studies/{study.pk}/", timeout=60_000)
    for corpus in ("python-docs", "stdlib"):
        page.wait_for_selector(f"#chart-val_loss-{corpus} .main-svg", state="attached")
    assert "val_loss/python-docs" in page.locator("#corpus-verdicts").inner_text()
    screenshot(page, "blend-study")
