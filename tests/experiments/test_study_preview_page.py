"""The new-study page shows the same preview as the API: with a compute pool, whether the area's grant covers
the estimate, and a warning when the signed-in user may not launch the ideas."""
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from compute import services as compute_services
from compute.cycles import Calendar
from compute.models import Pool
from ideas import services as idea_services
from ideas.lifecycle import Status


@pytest.fixture
def integration_pair(make_idea, pic):
    ideas = make_idea("Latent MoE", {"moe.latent_size": 32}), make_idea("Lower LR", {"optim.lr": 0.002})
    for idea in ideas:
        for status in (Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION):
            idea_services.idea_transition(idea=idea, to_status=status, by=pic)
    return ideas


@pytest.fixture
def area_grant(area, make_user):
    reviewer = make_user("rita", reviewer=True)
    pool = Pool.objects.create(name="h100", gpu_type="H100 80GB", gpu_count=8)
    now = timezone.now()
    cycle = compute_services.cycle_ensure(window=Calendar.from_settings().window_containing(now), now=now)
    compute_services.allocation_set(cycle=cycle, pool=pool, area=area, gpu_hours=Decimal("40"), actor=reviewer)


def _preview(user, ideas) -> str:
    client = Client()
    client.force_login(user)
    response = client.post("/experiments/studies/new/preview/", {
        "baseline": "tiny-fast", "ideas": [idea.key for idea in ideas], "seeds": "0, 1", "max_steps": 4})
    assert response.status_code == 200
    return response.content.decode()


def test_the_preview_shows_the_grant_that_covers_the_study(pic, integration_pair, fast_baseline, area_grant):
    html = _preview(pic, integration_pair)

    assert 'data-budget="covered"' in html and "40.00 GPU-h left on the MoE routing area grant on h100" in html
    assert "data-cannot-launch" not in html


def test_the_preview_warns_who_may_not_launch(outsider, integration_pair, fast_baseline):
    html = _preview(outsider, integration_pair)

    assert "data-cannot-launch" in html and "You may not launch this study" in html
    assert "data-budget" not in html  # no pool: launches are not budgeted


def test_the_new_study_page_with_its_grant(browser_page, live_server, screenshot, pic, integration_pair, fast_baseline,
                                           area_grant):
    from tests.experiments.test_browser import _sign_in

    _sign_in(browser_page, pic, live_server)
    browser_page.goto("/experiments/studies/new/")
    for idea in integration_pair:
        browser_page.check(f"input[value='{idea.key}']")
    browser_page.wait_for_selector("[data-budget='covered']")
    screenshot(browser_page, "new study with grant")
