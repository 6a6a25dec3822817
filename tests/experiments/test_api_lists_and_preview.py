"""The read side of the experiments API: the studies list with its filters and visibility, baselines, a
study's cancel, an attempt's log in chunks, and the launch preview that creates nothing."""
from decimal import Decimal

import pytest
from django.test.utils import CaptureQueriesContext
from django.db import connection
from django.utils import timezone

from compute import services as compute_services
from compute.cycles import Calendar
from compute.models import LaunchHold, Pool
from experiments import services
from experiments.models import Attempt, Run, RunStatus, Study
from ideas.models import Area
from tests.experiments.finished_runs import finish_study
from tests.support.people import FAST_OVERRIDES
from tests.experiments.helpers import api_client_for


def _launch(user, ideas, kind="ablation", seeds=(0,), **extra) -> Study:
    return services.study_launch(user=user, kind=kind, baseline="tiny-fast", ideas=[idea.key for idea in ideas],
                                 seeds=list(seeds), max_steps=4, **extra)


# ------------------------------------------------------------------------------------------------- list


@pytest.fixture
def three_studies(pic, staff, make_idea, fast_baseline):
    latent = make_idea("Latent MoE", {"moe.latent_size": 32})
    lower_lr = make_idea("Lower LR", {"optim.lr": 0.002})
    finished = _launch(pic, [latent])
    finish_study(finished, steps=4)
    failed = _launch(staff, [lower_lr])
    finish_study(failed, steps=4, status=RunStatus.FAILED)
    queued = _launch(pic, [latent, lower_lr], kind="integration", seeds=(0, 1))
    return finished, failed, queued


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [study["id"] for study in response.json()["results"]]


def test_the_list_is_newest_first_with_status_and_run_count(api, three_studies):
    finished, failed, queued = three_studies

    body = api.get("/api/v1/studies/").json()

    assert body["count"] == 3
    assert [(s["id"], s["status"], s["run_count"]) for s in body["results"]] == [
        (queued.pk, "queued", 4), (failed.pk, "failed", 2), (finished.pk, "succeeded", 2)]
    first = body["results"][0]
    assert first["baseline"] == "tiny-fast@1" and first["kind"] == "integration" and first["created_by"] == "pia"
    assert first["ideas"] == [idea.key for idea in queued.ideas.order_by("study_memberships__position")]


def test_a_running_study_reads_running(api, three_studies):
    queued = three_studies[2]
    Run.objects.filter(pk=queued.runs.first().pk).update(status=RunStatus.RUNNING)

    assert _ids(api.get("/api/v1/studies/?status=running")) == [queued.pk]
    assert _ids(api.get("/api/v1/studies/?status=queued")) == []


@pytest.mark.parametrize("query, expected", [
    ("kind=integration", [2]),
    ("kind=ablation", [1, 0]),
    ("status=succeeded", [0]),
    ("status=failed", [1]),
    ("launched_by=stella", [1]),
    ("launched_by=nobody", []),
    ("baseline=tiny-fast", [2, 1, 0]),
    ("baseline=tiny-fast@1", [2, 1, 0]),
    ("baseline=tiny-fast@2", []),
    ("area=moe-routing", [2, 1, 0]),
    ("area=elsewhere", []),
])
def test_each_filter(api, three_studies, query, expected):
    assert _ids(api.get(f"/api/v1/studies/?{query}")) == [three_studies[index].pk for index in expected]


def test_the_idea_filter(api, three_studies):
    finished, failed, queued = three_studies
    latent = finished.ideas.get()

    assert _ids(api.get(f"/api/v1/studies/?idea={latent.key}")) == [queued.pk, finished.pk]


@pytest.mark.parametrize("query, field", [("kind=bake-off", "kind"), ("status=done", "status"),
                                          ("baseline=a@b", "baseline"), ("colour=blue", "colour")])
def test_bad_filters_are_a_400_naming_them(api, query, field):
    response = api.get(f"/api/v1/studies/?{query}")

    assert response.status_code == 400 and field in response.json()


def test_studies_of_a_restricted_area_are_hidden_from_outsiders(three_studies, area, outsider, pic):
    Area.objects.filter(pk=area.pk).update(restricted=True)

    assert _ids(api_client_for(outsider).get("/api/v1/studies/")) == []
    assert len(_ids(api_client_for(pic).get("/api/v1/studies/"))) == 3


def test_the_list_costs_the_same_queries_for_more_studies(api, three_studies, pic, make_idea):
    with CaptureQueriesContext(connection) as few:
        api.get("/api/v1/studies/")
    for number in range(3):
        # Not 0.003: that is the baseline's own learning rate, and an ablation that changes nothing is refused.
        _launch(pic, [make_idea(f"More {number}", {"optim.lr": 0.0011 * (number + 1)})])
    with CaptureQueriesContext(connection) as more:
        assert api.get("/api/v1/studies/").json()["count"] == 6

    assert len(more) == len(few)


# ------------------------------------------------------------------------------------------------ cancel


def test_cancelling_a_study_cancels_its_live_runs(api, three_studies):
    queued = three_studies[2]

    response = api.post(f"/api/v1/studies/{queued.pk}/cancel/")

    assert response.status_code == 200 and response.json() == {"cancelled": 4}
    assert set(queued.runs.values_list("status", flat=True)) == {RunStatus.CANCELLED}
    assert api.post(f"/api/v1/studies/{queued.pk}/cancel/").json() == {"cancelled": 0}


def test_cancel_checks_visibility_then_permission(three_studies, area, outsider):
    queued = three_studies[2]
    assert api_client_for(outsider).post(f"/api/v1/studies/{queued.pk}/cancel/").status_code == 403
    Area.objects.filter(pk=area.pk).update(restricted=True)
    assert api_client_for(outsider).post(f"/api/v1/studies/{queued.pk}/cancel/").status_code == 404
    assert not queued.runs.filter(status=RunStatus.CANCELLED).exists()


# --------------------------------------------------------------------------------------------------- logs


@pytest.fixture
def logged_run(pic, make_idea, fast_baseline):
    study = _launch(pic, [make_idea("Latent MoE", {"moe.latent_size": 32})])
    run = study.runs.order_by("id").first()
    attempt = run.attempts.get()
    attempt.log_path.parent.mkdir(parents=True, exist_ok=True)
    attempt.log_path.write_text("".join(f"step {n} loss 3.{n} ✓\n" for n in range(5000)))
    return run, attempt


def test_a_log_is_read_in_chunks_that_end_at_line_breaks(api, logged_run):
    run, attempt = logged_run
    whole = attempt.log_path.read_text()
    text, offset, chunks = "", 0, 0
    while True:
        chunk = api.get(f"/api/v1/runs/{run.pk}/logs/?offset={offset}").json()
        assert chunk["run"] == run.pk and chunk["attempt"] == 1 and chunk["offset"] == offset
        assert chunk["text"] == "" or chunk["text"].endswith("\n")
        text += chunk["text"]
        chunks += 1
        if chunk["next_offset"] == offset:
            break
        offset = chunk["next_offset"]

    assert text == whole and chunks >= 3
    assert chunk["complete"] is False  # the attempt is still queued: more may come


def test_an_ended_attempts_log_is_complete_once_read(api, logged_run):
    run, attempt = logged_run
    Attempt.objects.filter(pk=attempt.pk).update(state=RunStatus.SUCCEEDED, finished_at=timezone.now())
    size = attempt.log_path.stat().st_size

    chunk = api.get(f"/api/v1/runs/{run.pk}/logs/?offset={size}").json()

    assert chunk == {"run": run.pk, "attempt": 1, "offset": size, "next_offset": size, "text": "", "complete": True}


def test_without_a_log_file_the_kept_tail_is_the_log(api, logged_run):
    run, attempt = logged_run
    attempt.log_path.unlink()
    Attempt.objects.filter(pk=attempt.pk).update(state=RunStatus.FAILED, log_tail="Traceback: corpus missing\n")

    chunk = api.get(f"/api/v1/runs/{run.pk}/logs/").json()

    assert chunk["text"] == "Traceback: corpus missing\n" and chunk["complete"] is True


def test_an_unknown_attempt_is_a_400_listing_the_attempts(api, logged_run):
    run, _ = logged_run

    response = api.get(f"/api/v1/runs/{run.pk}/logs/?attempt=3")

    assert response.status_code == 400
    assert response.json() == {"attempt": [f"run {run.pk} has no attempt 3; attempts: 1"]}


# ---------------------------------------------------------------------------------------------- baselines


def test_baselines_list_their_latest_versions_and_detail_resolves_the_config(api, fast_baseline):
    services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides={**FAST_OVERRIDES, "optim.lr": 0.004})
    services.baseline_save(name="alpha", recipe="tiny-ci")

    listing = api.get("/api/v1/baselines/").json()
    detail = api.get("/api/v1/baselines/tiny-fast/").json()
    first = api.get("/api/v1/baselines/tiny-fast@1/").json()

    assert [(b["name"], b["version"], b["label"]) for b in listing["results"]] == [("alpha", 1, "alpha@1"),
                                                                                 ("tiny-fast", 2, "tiny-fast@2")]
    assert detail["label"] == "tiny-fast@2" and [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["config"]["optim"]["lr"] == 0.004 and detail["config"]["train"]["seq_len"] == 32
    assert first["version"] == 1 and first["config"]["optim"]["lr"] != 0.004
    assert api.get("/api/v1/baselines/nope/").status_code == 404


# ------------------------------------------------------------------------------------------------ preview


def _body(ideas, **changes) -> dict:
    return {"kind": "integration", "baseline": "tiny-fast", "ideas": [idea.key for idea in ideas], "seeds": [0, 1],
            "max_steps": 4, **changes}


def test_the_preview_plans_arms_and_runs_and_creates_nothing(api, make_idea, fast_baseline):
    latent = make_idea("Latent MoE", {"moe.latent_size": 32})
    lower_lr = make_idea("Lower LR", {"optim.lr": 0.002})

    response = api.post("/api/v1/studies/preview/", _body([latent, lower_lr], leave_one_out=True), format="json")

    assert response.status_code == 200, response.json()
    plan = response.json()
    assert [(arm["name"], arm["ideas"]) for arm in plan["arms"]] == [
        ("baseline", []), ("all", [latent.key, lower_lr.key]),
        (f"all-{latent.key}", [lower_lr.key]), (f"all-{lower_lr.key}", [latent.key])]
    assert plan["composed_patch"] == {"moe.latent_size": 32, "optim.lr": 0.002}
    assert plan["run_count"] == 8 and plan["merged"] == [] and plan["conflicts"] == []
    assert plan["tokens_per_run"] == 4 * 2 * 32
    assert plan["budget"] is None  # no compute pool on this site
    assert plan["can_launch"] is True and plan["launchable"] is True and plan["problems"] == []
    assert not Study.objects.exists() and not Run.objects.exists()


def test_the_preview_merges_identical_configs(api, make_idea, fast_baseline):
    # One idea whose patch is the baseline's own value: leaving the other out trains the baseline's config, and
    # leaving it out trains the config of "all". (Ideas that together change nothing are refused instead.)
    lower_lr = make_idea("Lower LR", {"optim.lr": 0.002})
    same = make_idea("Same", {"train.seq_len": 32})

    plan = api.post("/api/v1/studies/preview/", _body([lower_lr, same], leave_one_out=True), format="json").json()

    assert plan["run_count"] == 4
    assert sorted(sorted(group["arms"]) for group in plan["merged"]) == [
        ["all", f"all-{same.key}"], [f"all-{lower_lr.key}", "baseline"]]


def test_the_preview_lists_conflicts_with_both_values(api, make_idea, fast_baseline):
    fast = make_idea("Fast LR", {"optim.lr": 0.01})
    slow = make_idea("Slow LR", {"optim.lr": 0.001})

    plan = api.post("/api/v1/studies/preview/", _body([fast, slow]), format="json").json()

    assert plan["conflicts"] == [{"key": "optim.lr", "values": [{"idea": fast.key, "value": 0.01},
                                                                 {"idea": slow.key, "value": 0.001}]}]
    assert plan["launchable"] is False and "optim.lr" in plan["problems"][0]


def test_the_preview_refuses_bad_input_like_the_launch(api, make_idea, fast_baseline):
    latent = make_idea("Latent MoE", {"moe.latent_size": 32})
    body = _body([latent], kind="ablation", seeds=[0, 0])

    preview = api.post("/api/v1/studies/preview/", body, format="json")
    launch = api.post("/api/v1/studies/", body, format="json")

    assert preview.status_code == launch.status_code == 400
    assert preview.json() == launch.json() == {"seeds": ["seeds must be distinct"]}


def test_an_idea_the_user_may_not_see_reads_as_unknown(make_idea, fast_baseline, area, outsider):
    latent = make_idea("Latent MoE", {"moe.latent_size": 32})
    Area.objects.filter(pk=area.pk).update(restricted=True)

    response = api_client_for(outsider).post("/api/v1/studies/preview/", _body([latent], kind="ablation"), format="json")

    assert response.status_code == 400 and response.json() == {"ideas": [f"unknown idea key {latent.key}"]}


def test_the_preview_says_who_may_launch(make_idea, fast_baseline, outsider):
    latent = make_idea("Latent MoE", {"moe.latent_size": 32})

    plan = api_client_for(outsider).post("/api/v1/studies/preview/", _body([latent], kind="ablation"), format="json").json()

    assert plan["can_launch"] is False and plan["launchable"] is False
    assert plan["problems"] == ["only the PIC and launchers of every idea's area (or staff) may launch this study"]


@pytest.fixture
def granted_area(area, make_user):
    """A pool with a published current cycle in which `area` has a 5 GPU-hour grant."""
    reviewer = make_user("rita", reviewer=True)
    pool = Pool.objects.create(name="h100", gpu_type="H100 80GB", gpu_count=8)
    now = timezone.now()
    cycle = compute_services.cycle_ensure(window=Calendar.from_settings().window_containing(now), now=now)
    compute_services.allocation_set(cycle=cycle, pool=pool, area=area, gpu_hours=Decimal("5"), actor=reviewer)
    type(cycle).objects.filter(pk=cycle.pk).update(phase="published")
    return pool


def test_the_preview_says_whether_the_grant_covers_the_estimate(api, pic, make_idea, fast_baseline, granted_area,
                                                                settings):
    settings.FLIGHTDECK_DEFAULT_POOL = "h100"
    latent = make_idea("Latent MoE", {"moe.latent_size": 32})
    body = _body([latent], kind="ablation")

    covered = api.post("/api/v1/studies/preview/", body, format="json").json()
    finished = _launch(pic, [latent])
    finish_study(finished, steps=4)
    Run.objects.filter(study=finished).update(tokens_per_s=0.001)  # absurdly slow: thousands of GPU-hours
    refused = api.post("/api/v1/studies/preview/", body, format="json").json()

    assert covered["budget"]["covered"] is True and covered["launchable"] is True
    assert covered["budget"]["grant"] == "the MoE routing area grant on h100"
    assert refused["budget"]["covered"] is False and refused["launchable"] is False
    assert refused["problems"] == [refused["budget"]["message"]] and refused["budget"]["message"].startswith("refused:")
    holds = LaunchHold.objects.count()
    assert api.post("/api/v1/studies/preview/", body, format="json").status_code == 200
    assert LaunchHold.objects.count() == holds  # a preview reserves nothing


def test_a_chunk_inside_one_long_line_never_splits_a_character(api, logged_run):
    run, attempt = logged_run
    attempt.log_path.write_text("x" + "é" * 100_000)  # no line break; two-byte characters across 64 KiB edges

    text, offset = "", 0
    while (chunk := api.get(f"/api/v1/runs/{run.pk}/logs/?offset={offset}").json())["next_offset"] > offset:
        text += chunk["text"]
        offset = chunk["next_offset"]

    assert text == "x" + "é" * 100_000
