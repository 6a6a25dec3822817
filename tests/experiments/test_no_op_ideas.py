"""Evidence that cannot mislead: ideas that change nothing against a baseline are refused as ablations (API,
preview, idea panel) naming idea, baseline and why; the submitter is warned; duplicate patch keys are refused."""
import json

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from experiments import services
from experiments.models import Study
from ideas import services as idea_services
from ideas.forms import parse_patch_text
from ideas.lifecycle import Status


@pytest.fixture
def api(pic) -> APIClient:
    client = APIClient()
    client.force_authenticate(pic)
    return client


def _ablation(idea, **changes) -> dict:
    return {"kind": "ablation", "baseline": "tiny-fast", "ideas": [idea.key], "seeds": [0, 1], "max_steps": 4, **changes}


@pytest.mark.parametrize("patch, why", [
    ({"fp4.stochastic_rounding": False},
     "fp4.stochastic_rounding has no effect: FP4 is off in this config (fp4.enabled = false)"),
    ({"optim.lr": 0.003}, "optim.lr = 0.003 is already the baseline's value"),
    ({"mtp.loss_weight": 0.5}, "mtp.loss_weight has no effect: multi-token prediction is off in this config (mtp.depth = 0)"),
])
def test_a_no_op_ablation_is_a_400_naming_idea_baseline_and_why(api, make_idea, fast_baseline, patch, why):
    idea = make_idea("Looks like a change", patch)

    response = api.post("/api/v1/studies/", _ablation(idea), format="json")

    assert response.status_code == 400
    assert response.json()["ideas"] == [f"{idea.key} changes nothing against tiny-fast@1: {why}"]
    assert not Study.objects.exists()


def test_a_patch_that_switches_the_feature_on_is_not_a_no_op(api, make_idea, fast_baseline):
    idea = make_idea("FP4 with stochastic rounding", {"fp4.enabled": True, "fp4.stochastic_rounding": True})

    assert api.post("/api/v1/studies/", _ablation(idea), format="json").status_code == 201


def test_an_integration_whose_ideas_together_change_nothing_is_refused(pic, make_idea, fast_baseline):
    same_lr = make_idea("Same LR", {"optim.lr": 0.003})
    fp4_knob = make_idea("Rounding knob", {"fp4.rht": False})

    with pytest.raises(ValidationError) as refused:
        services.study_launch(user=pic, kind="integration", baseline="tiny-fast", ideas=[same_lr.key, fp4_knob.key],
                              seeds=[0], max_steps=4)
    assert refused.value.message_dict["ideas"] == [
        f"{same_lr.key} + {fp4_knob.key} changes nothing against tiny-fast@1: optim.lr = 0.003 is already the "
        "baseline's value; fp4.rht has no effect: FP4 is off in this config (fp4.enabled = false)"]


def test_the_idea_panel_says_why_an_ablation_is_refused(web, make_idea, fast_baseline):
    idea = make_idea("Rounding off", {"fp4.stochastic_rounding": False})

    response = web.post(f"/experiments/ideas/{idea.key}/ablation/", {"baseline": "tiny-fast", "seeds": "0, 1",
                                                                      "max_steps": "4"})

    assert response.status_code == 400
    assert f"{idea.key} changes nothing against tiny-fast@1" in response.content.decode()


def test_the_preview_says_which_idea_changes_nothing(web, pic, make_idea, fast_baseline):
    ideas = [make_idea("Rounding off", {"fp4.stochastic_rounding": False}), make_idea("Same LR", {"optim.lr": 0.003})]
    for idea in ideas:
        for status in (Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION):
            idea_services.idea_transition(idea=idea, to_status=status, by=pic)

    html = web.post("/experiments/studies/new/preview/", {"baseline": "tiny-fast", "ideas": [i.key for i in ideas],
                                                           "seeds": "0, 1", "max_steps": "4"}).content.decode()

    assert f"{ideas[0].key} + {ideas[1].key} changes nothing against tiny-fast@1" in html
    assert "FP4 is off in this config" in html


# ---------------------------------------------------------------------------------------------- submission


def test_submitting_a_patch_that_changes_no_baseline_warns(web, area, fast_baseline):
    response = web.post("/ideas/new/", {"title": "Turn rounding off", "area": area.pk, "summary": "Why not.",
                                        "recipe_patch": "fp4.stochastic_rounding = false"}, follow=True)

    html = response.content.decode()
    assert "submitted" in html
    assert "This patch changes nothing against any current baseline" in html
    assert "tiny-fast@1 (fp4.stochastic_rounding has no effect: FP4 is off in this config" in html


def test_a_patch_that_changes_some_baseline_submits_without_warning(web, area, fast_baseline):
    response = web.post("/ideas/new/", {"title": "Lower LR", "area": area.pk, "summary": "Why not.",
                                        "recipe_patch": "optim.lr = 0.002"}, follow=True)

    assert "changes nothing" not in response.content.decode()


def test_the_api_answers_the_same_warning_on_submit_and_on_a_patch_edit(api, area, fast_baseline):
    created = api.post("/api/v1/ideas/", {"title": "Rounding off", "area": area.slug, "summary": "Why not.",
                                          "recipe_patch": "fp4.stochastic_rounding = false"}, format="json")

    assert created.status_code == 201
    [warning] = created.json()["warnings"]
    assert warning.startswith("This patch changes nothing against any current baseline")
    assert "tiny-fast@1 (fp4.stochastic_rounding has no effect: FP4 is off in this config" in warning

    key = created.json()["key"]
    fixed = api.patch(f"/api/v1/ideas/{key}/", {"recipe_patch": {"optim.lr": 0.002}}, format="json")
    assert fixed.status_code == 200 and fixed.json()["warnings"] == []
    broken = api.patch(f"/api/v1/ideas/{key}/", {"recipe_patch": {"optim.lr": 0.003}}, format="json")
    assert "optim.lr = 0.003 is already the baseline's value" in broken.json()["warnings"][0]
    retitled = api.patch(f"/api/v1/ideas/{key}/", {"title": "Same LR"}, format="json")
    assert retitled.json()["warnings"] == []  # only a write that changes the patch is judged


def test_editing_the_patch_into_a_no_op_warns_on_the_page(web, area, fast_baseline):
    web.post("/ideas/new/", {"title": "Lower LR", "area": area.pk, "summary": "Why not.",
                             "recipe_patch": "optim.lr = 0.002"})
    idea = area.ideas.get()

    response = web.post(f"/ideas/{idea.key}/edit/", {"title": "Lower LR", "area": area.pk, "summary": "Why not.",
                                                     "recipe_patch": "optim.lr = 0.003"}, follow=True)

    assert "optim.lr = 0.003 is already the baseline&#x27;s value" in response.content.decode()


# -------------------------------------------------------------------------------------------- duplicate keys


@pytest.mark.parametrize("text, message", [
    ("moe.latent_size = 128\noptim.lr = 0.002\nmoe.latent_size = 64",
     "line 3: moe.latent_size is set twice (first on line 1); keep one value"),
    ('{"moe.latent_size": 128, "moe.latent_size": 64}', "moe.latent_size is set twice in one JSON object"),
])
def test_a_patch_setting_a_key_twice_is_refused_naming_it(text, message):
    with pytest.raises(ValidationError) as refused:
        parse_patch_text(text)
    assert message in refused.value.messages[0]


def test_the_idea_form_keeps_what_was_typed_when_a_key_is_repeated(web, area, fast_baseline):
    text = "moe.latent_size = 128\nmoe.latent_size = 64"
    response = web.post("/ideas/new/", {"title": "Latent", "area": area.pk, "summary": "Why.", "recipe_patch": text})

    html = response.content.decode()
    assert response.status_code == 400
    assert "moe.latent_size is set twice" in html and "moe.latent_size = 64" in html


def test_the_api_refuses_json_that_repeats_a_key(api, area):
    body = ('{"title": "Latent", "summary": "Why.", "area": "moe-routing", '
            '"recipe_patch": {"moe.latent_size": 128, "moe.latent_size": 64}}')

    response = api.post("/api/v1/ideas/", body, content_type="application/json")

    assert response.status_code == 400
    assert "moe.latent_size is set twice in one JSON object" in response.json()["detail"]
    assert api.post("/api/v1/ideas/", json.loads(body), format="json").status_code == 201  # one key: fine
