"""REST API of studies and runs: every bad input named, conflicts listed, permissions, reads; and one
integration study of two ideas × two seeds trained end to end by a real Celery worker."""
import pytest
from rest_framework.test import APIClient

from experiments import services
from experiments.models import Attempt, Metric, Run, RunStatus, Study
from tests.experiments.finished_runs import finish_study
from tests.experiments.helpers import wait_until
from tests.experiments.helpers import api_client_for


@pytest.fixture
def two_ideas(make_idea):
    return make_idea("Latent MoE", {"moe.latent_size": 32}), make_idea("Lower LR", {"optim.lr": 0.002})


def _body(idea_rows, **changes) -> dict:
    return {"kind": "integration", "baseline": "tiny-fast", "ideas": [idea.key for idea in idea_rows],
            "seeds": [0, 1], "max_steps": 4, **changes}


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("changes, field, message", [
    ({"baseline": "no-such-baseline"}, "baseline", "unknown baseline 'no-such-baseline' (known: tiny-fast)"),
    ({"baseline": "tiny-fast@7"}, "baseline", "unknown baseline 'tiny-fast@7'"),
    ({"ideas": ["IDEA-0001", "IDEA-0999"]}, "ideas", "unknown idea key IDEA-0999"),
    ({"seeds": []}, "seeds", "seeds must be a list of 1 to 16 integers"),
    ({"seeds": [0, -1]}, "seeds", "seed -1 is out of range"),
    ({"seeds": list(range(17))}, "seeds", "seeds must be a list of 1 to 16 integers"),
    ({"max_steps": 0}, "max_steps", "max_steps must be an integer from 1 to 1000000, got 0"),
    ({"max_steps": 10_000_000}, "max_steps", "max_steps must be an integer from 1 to 1000000"),
    ({"kind": "bake-off"}, "kind", '"bake-off" is not a valid choice.'),
    ({"resolutions": {"optim.lr": 0.001}}, "resolutions", "'optim.lr' is not a conflicting key"),
    ({"colour": "blue"}, "colour", "unknown field; allowed: kind, baseline, ideas"),
])
def test_bad_input_is_a_400_naming_the_field(api, two_ideas, fast_baseline, changes, field, message):
    response = api.post("/api/v1/studies/", _body(two_ideas, **changes), format="json")

    assert response.status_code == 400, response.json()
    assert message in " ".join(response.json()[field])
    assert not Study.objects.exists()


def test_an_invalid_patch_key_is_a_400_naming_the_key(api, two_ideas, fast_baseline):
    # An idea whose patch stopped being valid (e.g. the recipe lost a key since it was submitted).
    latent, lower_lr = two_ideas
    type(latent).objects.filter(pk=latent.pk).update(recipe_patch={"moe.no_such_knob": 3})

    response = api.post("/api/v1/studies/", _body(two_ideas), format="json")

    assert response.status_code == 400
    assert "moe.no_such_knob" in " ".join(response.json()["ideas"]) and latent.key in " ".join(response.json()["ideas"])


def test_conflicting_patches_are_a_409_listing_them(api, make_idea, fast_baseline):
    fast = make_idea("Fast LR", {"optim.lr": 0.01, "moe.latent_size": 32})
    slow = make_idea("Slow LR", {"optim.lr": 0.001})

    response = api.post("/api/v1/studies/", _body([fast, slow]), format="json")

    assert response.status_code == 409
    assert response.json()["conflicts"] == [
        {"key": "optim.lr", "values": [{"idea": fast.key, "value": 0.01}, {"idea": slow.key, "value": 0.001}]}]
    resolved = api.post("/api/v1/studies/", _body([fast, slow], resolutions={"optim.lr": 0.001}), format="json")
    assert resolved.status_code == 201 and resolved.json()["resolutions"] == {"optim.lr": 0.001}


def test_only_the_areas_pic_volunteers_and_staff_may_launch(two_ideas, fast_baseline, volunteer, outsider, staff):
    assert api_client_for(outsider).post("/api/v1/studies/", _body(two_ideas), format="json").status_code == 403
    assert api_client_for(volunteer).post("/api/v1/studies/", _body(two_ideas), format="json").status_code == 201
    assert api_client_for(staff).post("/api/v1/studies/", _body(two_ideas, seeds=[5]), format="json").status_code == 201


def test_reading_needs_sign_in_but_nothing_else(outsider, two_ideas, fast_baseline, pic):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[two_ideas[0].key],
                                  seeds=[0], max_steps=4)
    run = study.runs.first()

    assert APIClient().get(f"/api/v1/studies/{study.pk}/").status_code == 401  # no credentials: Bearer challenge
    assert api_client_for(outsider).get(f"/api/v1/studies/{study.pk}/").status_code == 200
    assert api_client_for(outsider).get(f"/api/v1/runs/{run.pk}/").status_code == 200
    assert api_client_for(outsider).post(f"/api/v1/runs/{run.pk}/cancel/").status_code == 403


def test_unknown_ids_are_404(api):
    assert api.get("/api/v1/studies/12345/").status_code == 404
    assert api.get("/api/v1/runs/12345/").status_code == 404
    assert api.post("/api/v1/runs/12345/cancel/").status_code == 404


def test_cancelling_a_finished_run_is_a_409_and_resuming_a_queued_one_too(api, two_ideas, fast_baseline, pic):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[two_ideas[0].key],
                                  seeds=[0], max_steps=4)
    finished, queued = study.runs.order_by("id")
    Run.objects.filter(pk=finished.pk).update(status=RunStatus.SUCCEEDED)
    finished.attempts.update(state=RunStatus.SUCCEEDED)

    cancel = api.post(f"/api/v1/runs/{finished.pk}/cancel/")
    resume = api.post(f"/api/v1/runs/{queued.pk}/resume/")

    assert cancel.status_code == 409 and cancel.json() == {
        "detail": f"cannot cancel run {finished.public_id}: it is succeeded", "status": "succeeded"}
    assert resume.status_code == 409 and resume.json()["status"] == "queued"


def test_cancel_then_resume_a_queued_run(api, two_ideas, fast_baseline, pic):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[two_ideas[0].key],
                                  seeds=[0], max_steps=4)
    run = study.runs.first()

    cancelled = api.post(f"/api/v1/runs/{run.pk}/cancel/")
    resumed = api.post(f"/api/v1/runs/{run.pk}/resume/")

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert resumed.status_code == 202 and resumed.json()["status"] == "queued"
    assert [a["state"] for a in resumed.json()["attempts"]] == ["cancelled", "queued"]


# ---------------------------------------------------------------------------------------------- reads


def test_metrics_are_served_by_name_and_downsampled_on_request(api, two_ideas, fast_baseline, pic):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[two_ideas[0].key],
                                  seeds=[0], max_steps=4)
    finish_study(study, steps=400, eval_every=10)
    run = study.runs.first()

    val = api.get(f"/api/v1/runs/{run.pk}/metrics/", {"name": "val_loss"}).json()
    train = api.get(f"/api/v1/runs/{run.pk}/metrics/", {"name": "train_loss", "max_points": 50}).json()
    unknown = api.get(f"/api/v1/runs/{run.pk}/metrics/", {"name": "val_los"})
    missing = api.get(f"/api/v1/runs/{run.pk}/metrics/")

    assert val["count"] == 40 and [p[0] for p in val["points"]] == list(range(10, 401, 10))
    assert val["points"][0][1] == Metric.objects.get(run=run, name="val_loss", step=10).value
    assert train["count"] == 400 and len(train["points"]) == 50
    assert train["points"][0][0] == 1 and train["points"][-1][0] == 400
    assert unknown.status_code == 400 and "has no metric 'val_los'; it has fp4_error" in unknown.json()["name"][0]
    assert missing.status_code == 400 and "name" in missing.json()


def test_the_study_shows_seed_stats_differences_and_verdict(api, make_idea, fast_baseline, pic):
    ideas = [make_idea("Latent MoE", {"moe.latent_size": 32}), make_idea("Lower LR", {"optim.lr": 0.002})]
    study = services.study_launch(user=pic, kind="integration", baseline="tiny-fast", ideas=[i.key for i in ideas],
                                  seeds=[0, 1, 2], max_steps=50, leave_one_out=True)
    finish_study(study)

    body = api.get(f"/api/v1/studies/{study.pk}/").json()

    assert body["status"] == "succeeded" and body["baseline"] == "tiny-fast@1"
    assert [arm["name"] for arm in body["arms"]] == ["baseline", "all", f"all-{ideas[0].key}", f"all-{ideas[1].key}"]
    baseline, everything = body["arms"][0], body["arms"][1]
    assert baseline["seed_stats"]["n"] == 3 and baseline["vs_baseline"] is None
    assert set(baseline["final_val_loss"]) == {"0", "1", "2"}
    assert everything["vs_baseline"]["method"] == "paired" and everything["vs_baseline"]["significant"]
    assert everything["vs_baseline"]["estimate"] == pytest.approx(-0.08)
    assert body["verdict"] == [f"integration beats baseline by {0.08 / baseline['seed_stats']['mean'] * 100:.1f}% "
                               "± 0.0% val loss over 3 seeds"]
    assert [m["idea"] for m in body["marginals"]] == [i.key for i in ideas]
    assert len(body["runs"]) == 12


# ---------------------------------------------------------------------------------------- end to end


@pytest.mark.timeout(240)
def test_an_integration_study_launched_through_the_api_succeeds_with_metrics_and_a_verdict(
        celery_worker, api, two_ideas, fast_baseline):
    created = api.post("/api/v1/studies/", _body(two_ideas), format="json")
    assert created.status_code == 201, created.json()
    study_id = created.json()["id"]
    # The answer reads the study after the launch committed; the worker may already have started a run by then.
    assert created.json()["status"] in ("queued", "running") and len(created.json()["runs"]) == 4

    body = wait_until(lambda: (b := api.get(f"/api/v1/studies/{study_id}/").json())["status"] != "running"
                      and b["status"] != "queued" and b, timeout=200, what="the study to finish")

    assert body["status"] == "succeeded", [(a.state, a.reason, a.log_tail[-2000:]) for a in Attempt.objects.all()]
    assert {run["status"] for run in body["runs"]} == {"succeeded"}
    for run in body["runs"]:
        points = api.get(f"/api/v1/runs/{run['id']}/metrics/", {"name": "val_loss"}).json()["points"]
        assert [step for step, _ in points] == [2, 4]
    assert all(arm["seed_stats"]["n"] == 2 for arm in body["arms"])
    all_arm = body["arms"][1]
    assert all_arm["vs_baseline"]["method"] == "paired"
    [verdict] = body["verdict"]  # which way a 4-step run goes is not the point; that it is judged is
    assert verdict.startswith("integration ") and "val loss over 2 seeds" in verdict
