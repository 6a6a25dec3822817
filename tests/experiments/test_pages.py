"""Experiment pages: study list and page (grid, verdict, charts), launching from the idea page and the
new-study form (conflicts, drop, resolve), run page, baselines; pinned query counts."""
import json
import re

import plotly.graph_objects as go
import pytest
from django.test import Client

from experiments import services
from experiments.models import Run, RunStatus, Study
from ideas import services as idea_services
from ideas.lifecycle import Status
from tests.experiments.finished_runs import finish_study


@pytest.fixture
def outsider_web(outsider) -> Client:
    client = Client()
    client.force_login(outsider)
    return client


@pytest.fixture
def integration_ideas(make_idea, pic):
    """Two ideas in integration that conflict on optim.lr, plus one that does not."""
    ideas = [make_idea("Latent MoE", {"moe.latent_size": 32, "optim.lr": 0.002}),
             make_idea("Lower LR", {"optim.lr": 0.001}),
             make_idea("Less weight decay", {"optim.weight_decay": 0.05})]
    for idea in ideas:
        for status in (Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION):
            idea_services.idea_transition(idea=idea, to_status=status, by=pic)
    return ideas


@pytest.fixture
def finished_integration(pic, integration_ideas, fast_baseline) -> Study:
    latent, _, decay = integration_ideas
    study = services.study_launch(user=pic, kind="integration", baseline="tiny-fast", ideas=[latent.key, decay.key],
                                  seeds=[0, 1, 2], max_steps=50, leave_one_out=True)
    finish_study(study)
    return study


def _figures(html: str) -> dict[str, dict]:
    return {name: json.loads(body) for name, body in
            re.findall(r'<script id="figure-(\w+)" type="application/json">(.*?)</script>', html, re.S)}


def test_the_study_page_shows_grid_verdict_marginals_and_charts(web, finished_integration,
                                                                 django_assert_num_queries):
    study = finished_integration
    # 16 + the inbox badge's unread COUNT. Charts: the per-corpus metric names, stored curves and raw curves (one
    # query each, all metrics), stored bar aggregates and the two raw ones (experiments.series); a run with stored
    # series needs no raw read.
    with django_assert_num_queries(17):
        response = web.get(f"/experiments/studies/{study.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    for run in Run.objects.filter(study=study):
        assert f"/experiments/runs/{run.pk}/" in html
    assert re.search(r"integration beats baseline by \d\.\d% ± \d\.\d% val loss over 3 seeds", html)
    assert "contributes" in html and "Leave-one-out" in html
    assert 'hx-trigger="every' not in html  # finished: nothing polls
    figures = _figures(html)
    assert set(figures) == {"train_loss", "val_loss", "final_val_loss", "moe_imbalance", "fp4_error",
                            "tokens_per_s", "peak_mem_mb"}
    for figure in figures.values():
        go.Figure(figure)  # plotly's own schema validation: raises on any invalid property
    mean_lines = [trace for trace in figures["train_loss"]["data"] if trace.get("name")]
    assert [trace["name"] for trace in mean_lines] == [
        "baseline (n=3)", "all (n=3)", f"all-{study.study_ideas.first().idea.key} (n=3)",
        f"all-{study.study_ideas.last().idea.key} (n=3)"]
    assert '/static/vendor/plotly.min.js' in html


def test_smoothing_changes_the_training_curves_only(web, finished_integration):
    url = f"/experiments/studies/{finished_integration.pk}/results/"
    raw, smooth = (_figures(web.get(url, {"smooth": value}).content.decode()) for value in ("0", "0.9"))

    assert raw["train_loss"]["data"][2]["y"] != smooth["train_loss"]["data"][2]["y"]
    assert raw["val_loss"] == smooth["val_loss"]


def test_a_live_study_polls_its_grid_and_results(web, pic, make_idea, fast_baseline):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Wider", {"moe.intermediate_size": 96}).key], seeds=[0], max_steps=5)

    html = web.get(f"/experiments/studies/{study.pk}/").content.decode()

    assert f'hx-get="/experiments/studies/{study.pk}/progress/" hx-trigger="every 2s"' in html
    assert "Waiting for finished runs" in html
    fragment = web.get(f"/experiments/studies/{study.pk}/progress/").content.decode()
    assert fragment.count('class="badge run-queued"') == 3  # study status + two runs


def test_the_study_list_has_a_constant_query_count(web, pic, make_idea, fast_baseline, django_assert_num_queries):
    for index in range(3):
        study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                      ideas=[make_idea(f"Idea {index}", {"optim.lr": 0.0005 * (index + 1)}).key],
                                      seeds=[0, 1], max_steps=10)
        finish_study(study, steps=10, eval_every=5)

    with django_assert_num_queries(10):  # 9 + the inbox badge's unread COUNT
        response = web.get("/experiments/")

    assert response.status_code == 200
    assert response.content.decode().count("beats baseline by") == 3


def test_the_idea_panel_launches_an_ablation_for_the_pic(web, make_idea, fast_baseline):
    idea = make_idea("Latent MoE", {"moe.latent_size": 32})
    page = web.get(f"/ideas/{idea.key}").content.decode()
    assert "Run ablation" in page and f'action="/experiments/ideas/{idea.key}/ablation/"' in page

    response = web.post(f"/experiments/ideas/{idea.key}/ablation/",
                        {"baseline": "tiny-fast", "seeds": "0, 1", "max_steps": "20"})

    study = Study.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/experiments/studies/{study.pk}/"
    assert (study.kind, study.seeds, study.max_steps) == ("ablation", [0, 1], 20)
    assert [arm.name for arm in study.arms.all()] == ["baseline", f"+{idea.key}"]
    assert study.title in web.get(f"/ideas/{idea.key}").content.decode()


def test_the_idea_panel_offers_no_launch_to_outsiders_and_the_service_refuses(outsider_web, make_idea, fast_baseline):
    idea = make_idea("Latent MoE", {"moe.latent_size": 32})
    page = outsider_web.get(f"/ideas/{idea.key}").content.decode()
    assert "Run ablation" not in page and "launchers of" in page

    response = outsider_web.post(f"/experiments/ideas/{idea.key}/ablation/",
                                 {"baseline": "tiny-fast", "seeds": "0", "max_steps": "20"})

    assert response.status_code == 400 and "only the PIC and launchers" in response.content.decode()
    assert not Study.objects.exists()


@pytest.mark.parametrize("field, value, message", [
    ("seeds", "0, one", "&#x27;one&#x27; is not a whole number"),
    ("seeds", "0, 99999999999", "seed 99999999999 is out of range"),
    ("max_steps", "0", "max_steps must be an integer from 1"),
    ("baseline", "nope", "Select a valid choice"),
])
def test_bad_ablation_input_is_shown_on_the_form(web, make_idea, fast_baseline, field, value, message):
    idea = make_idea("Latent MoE", {"moe.latent_size": 32})
    data = {"baseline": "tiny-fast", "seeds": "0", "max_steps": "20", field: value}

    response = web.post(f"/experiments/ideas/{idea.key}/ablation/", data)

    assert response.status_code == 400 and message in response.content.decode()


def test_the_new_study_form_lists_ideas_in_integration(web, integration_ideas, make_idea, fast_baseline):
    triaged_only = make_idea("Not yet", {"optim.lr": 0.01})

    html = web.get("/experiments/studies/new/").content.decode()

    assert all(idea.key in html for idea in integration_ideas) and triaged_only.key not in html
    assert triaged_only.key in web.get("/experiments/studies/new/", {"show": "all"}).content.decode()


def test_the_preview_shows_conflicts_then_resolves_or_drops_them(web, integration_ideas, fast_baseline):
    latent, lower_lr, _ = integration_ideas
    form = {"baseline": "tiny-fast", "ideas": [latent.key, lower_lr.key], "seeds": "0, 1", "max_steps": "20"}

    conflicted = web.post("/experiments/studies/new/preview/", form, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-conflict="optim.lr"' in conflicted
    assert f"from <span class=\"key\">{latent.key}</span>" in conflicted and "0.002" in conflicted and "0.001" in conflicted
    assert re.search(r'type="submit" form="study-form"\s+disabled', conflicted)

    resolved = web.post("/experiments/studies/new/preview/", {**form, "resolve:optim.lr": "0.001"}).content.decode()
    assert "data-conflict" not in resolved and "Estimated GPU-hours" in resolved and "disabled" not in resolved

    dropped = web.post("/experiments/studies/new/preview/", {**form, "drop": lower_lr.key}).content.decode()
    assert 'id="study-form"' in dropped and "at least two ideas" not in dropped
    assert "a integration study needs 2 to 16 ideas, got 1" in dropped


def test_launching_with_a_resolution_creates_the_study(web, integration_ideas, fast_baseline):
    latent, lower_lr, _ = integration_ideas
    response = web.post("/experiments/studies/new/", {
        "baseline": "tiny-fast", "ideas": [latent.key, lower_lr.key], "seeds": "0", "max_steps": "20",
        "resolve:optim.lr": "0.001", "leave_one_out": "on", "title": "Latent MoE with lower LR"})

    study = Study.objects.get()
    assert response.status_code == 302 and study.title == "Latent MoE with lower LR"
    assert study.resolutions == {"optim.lr": 0.001} and study.leave_one_out
    assert study.arms.get(name="all").patch == {"moe.latent_size": 32, "optim.lr": 0.001}


def test_launching_with_an_unresolved_conflict_is_refused(web, integration_ideas, fast_baseline):
    latent, lower_lr, _ = integration_ideas
    response = web.post("/experiments/studies/new/", {
        "baseline": "tiny-fast", "ideas": [latent.key, lower_lr.key], "seeds": "0", "max_steps": "20"})

    assert response.status_code == 400 and "Resolve these conflicts first: optim.lr" in response.content.decode()
    assert not Study.objects.exists()


def test_the_run_page_shows_the_config_diff_attempts_and_actions(web, outsider_web, finished_integration,
                                                                django_assert_max_num_queries):
    study = finished_integration
    treated = study.arms.get(name="all").runs.get(seed=1)
    with django_assert_max_num_queries(12):
        html = web.get(f"/experiments/runs/{treated.pk}/").content.decode()

    assert re.search(r'<th class="mono">moe.latent_size</th><td class="mono"><span class="diff-old">0</span> → '
                     r'<span class="diff-new">32</span>', html)
    assert "train.seed" not in html.split("Full resolved config")[0]  # same seed as its baseline run
    assert treated.wandb_sync_command in html and treated.public_id in html
    assert "Resume from checkpoint" not in html and "Cancel run" not in html  # succeeded: nothing to do
    Run.objects.filter(pk=treated.pk).update(status=RunStatus.FAILED)
    assert "Resume from checkpoint" in web.get(f"/experiments/runs/{treated.pk}/").content.decode()
    assert "Resume from checkpoint" not in outsider_web.get(f"/experiments/runs/{treated.pk}/").content.decode()


def test_cancelling_a_finished_run_from_the_page_says_why_not(web, finished_integration):
    run = finished_integration.runs.first()

    response = web.post(f"/experiments/runs/{run.pk}/cancel/", follow=True)

    assert f"cannot cancel run {run.public_id}: it is succeeded" in response.content.decode()


def test_cancelling_a_queued_run_from_the_page(web, pic, make_idea, fast_baseline):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Wider", {"moe.intermediate_size": 96}).key], seeds=[0], max_steps=5)
    run = study.runs.first()

    web.post(f"/experiments/runs/{run.pk}/cancel/")

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_unknown_ids_are_404(web):
    assert web.get("/experiments/studies/999/").status_code == 404
    assert web.get("/experiments/runs/999/").status_code == 404
    assert web.get("/experiments/baselines/nope/").status_code == 404


def test_pages_need_sign_in(client, finished_integration):
    response = client.get(f"/experiments/studies/{finished_integration.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_baselines_list_and_versions(web, staff, fast_baseline, finished_integration):
    services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides={**fast_baseline.overrides, "train.seq_len": 64},
                           user=staff)

    listing = web.get("/experiments/baselines/").content.decode()
    detail = web.get("/experiments/baselines/tiny-fast/").content.decode()

    assert "tiny-fast@2" in listing and "tiny-fast@1" not in listing
    assert re.search(r'train.seq_len</th><td class="mono"><span class="diff-old">32</span> → <span class="diff-new">64', detail)
    assert finished_integration.title in detail


def test_re_run_launches_the_identical_config_again(web, finished_integration):
    run = finished_integration.arms.get(name="all").runs.get(seed=2)

    response = web.post(f"/experiments/runs/{run.pk}/rerun/", follow=True)

    rerun = Study.objects.exclude(pk=finished_integration.pk).get()
    twin = rerun.runs.get(config_hash=run.config_hash)
    assert response.redirect_chain[-1][0] == f"/experiments/runs/{twin.pk}/"
    assert f"{twin.public_id} re-runs the identical config" in response.content.decode()
    assert (rerun.seeds, rerun.baseline_id, rerun.leave_one_out) == ([2], finished_integration.baseline_id, True)
    assert twin.pk != run.pk and twin.status == RunStatus.QUEUED
