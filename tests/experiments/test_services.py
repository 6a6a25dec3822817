"""Launching, cancelling and resuming through the services; bad input is refused naming the field.

No worker here: start messages are only sent on commit, which these (rolled-back) tests never reach.
"""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from experiments import selectors, services
from experiments.composition import ConflictError
from experiments.errors import RunStateConflict
from experiments.models import Attempt, Baseline, Run, RunStatus
from experiments.planning import plan_study
from ideas import services as idea_services
from ideas.models import Idea, Transition

LATENT = {"moe.latent_size": 32}
EXPERTS = {"moe.num_experts": 8, "moe.top_k": 2}


def launch(user, ideas, **overrides):
    arguments = {"kind": "integration", "baseline": "tiny-fast", "ideas": [i.key for i in ideas], "seeds": [0, 1],
                 "max_steps": 4, **overrides}
    return services.study_launch(user=user, **arguments)


def field_error(caught: pytest.ExceptionInfo, name: str) -> str:
    return " ".join(caught.value.message_dict[name])


# ------------------------------------------------------------------------------------------------ baselines


def test_saving_a_changed_baseline_adds_a_version_and_unchanged_returns_the_latest(fast_baseline):
    assert fast_baseline.label == "tiny-fast@1"
    again = services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides=dict(fast_baseline.overrides))
    assert again.pk == fast_baseline.pk
    changed = services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides={"optim.lr": 0.001})
    assert changed.label == "tiny-fast@2"
    assert [b.version for b in selectors.baseline_versions("tiny-fast")] == [2, 1]


def test_a_baseline_with_an_invalid_override_is_refused_naming_the_key(db):
    with pytest.raises(ValidationError) as caught:
        services.baseline_save(name="broken", recipe="tiny-ci", overrides={"moe.num_expert": 4})
    assert "moe.num_expert" in field_error(caught, "overrides")
    assert not Baseline.objects.filter(name="broken").exists()


# ------------------------------------------------------------------------------------------------- launching


def test_an_integration_study_creates_arms_runs_and_queued_attempts(pic, make_idea, fast_baseline,
                                                                   django_capture_on_commit_callbacks):
    latent, experts = make_idea("Latent MoE", LATENT), make_idea("More experts", {"moe.num_experts": 8})
    with django_capture_on_commit_callbacks() as callbacks:
        study = launch(pic, [latent, experts], leave_one_out=True)
    study = selectors.study_detail(study.pk)
    assert study.baseline == fast_baseline
    assert [arm.name for arm in study.arms.all()] == [
        "baseline", "all", f"all-{latent.key}", f"all-{experts.key}"
    ]
    runs = list(study.runs.all())
    # A start message per run, and each idea moved to in_integration (recorded with the study as its note).
    starts = [hook for hook in callbacks if "start_on_commit" in hook.__qualname__]
    assert len(runs) == 8 and len(starts) == 8
    assert {latent.key, experts.key} <= set(
        Transition.objects.filter(to_status="in_integration").values_list("idea__key", flat=True))
    assert {run.seed for run in runs} == {0, 1}
    run = next(r for r in runs if r.arms.filter(name="all").exists() and r.seed == 1)
    assert run.overrides == {**fast_baseline.overrides, **LATENT, "moe.num_experts": 8, "train.seed": 1,
                             "train.max_steps": 4}
    assert run.config["model"]["moe"]["latent_size"] == 32 and run.config["train"]["max_steps"] == 4
    assert len(run.config_hash) == 64 and run.wandb_tags == [latent.key, experts.key]
    assert all(r.status == RunStatus.QUEUED and [a.state for a in r.attempts.all()] == ["queued"] for r in runs)
    assert study.title == f"Integration of {latent.key}, {experts.key} on tiny-fast@1"


def test_identical_configs_in_one_study_are_trained_once_and_shared(pic, make_idea, fast_baseline):
    latent = make_idea("Latent", LATENT)
    no_op = make_idea("Same as tiny-ci", {"moe.num_experts": 4})  # tiny-ci already has 4 experts
    study = launch(pic, [latent, no_op], baseline="tiny-fast@1", seeds=[3], leave_one_out=True)
    shared = study.arms.get(name="all").runs.get()
    # Leaving out the idea that changes nothing trains the very config of "all": one run serves both arms.
    assert sorted(arm.name for arm in shared.arms.all()) == ["all", f"all-{no_op.key}"]
    baseline_run = study.arms.get(name="baseline").runs.get()
    assert sorted(arm.name for arm in baseline_run.arms.all()) == [f"all-{latent.key}", "baseline"]
    assert study.runs.count() == 2


def test_the_database_allows_one_live_attempt_per_run(pic, make_idea, fast_baseline):
    study = launch(pic, [make_idea("a", LATENT), make_idea("b", {"optim.lr": 0.002})], seeds=[0])
    run = study.runs.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Attempt.objects.create(run=run, number=2, backend=run.backend)


def test_a_pinned_baseline_version_is_used_even_after_a_newer_one(pic, make_idea, fast_baseline):
    services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides={"optim.lr": 0.001})
    study = launch(pic, [make_idea("a", LATENT), make_idea("b", {"optim.lr": 0.002})], baseline="tiny-fast@1")
    assert study.baseline.label == "tiny-fast@1"
    assert launch(pic, [Idea.objects.get(title="a"), Idea.objects.get(title="b")]).baseline.label == "tiny-fast@2"


# ------------------------------------------------------------------------------------------------ conflicts


def test_conflicting_patches_block_the_launch_and_list_both_ideas(pic, make_idea, fast_baseline):
    wide, narrow = make_idea("Wide latent", {"moe.latent_size": 48}), make_idea("Narrow latent", LATENT)
    with pytest.raises(ConflictError) as caught:
        launch(pic, [wide, narrow])
    [conflict] = caught.value.conflicts
    assert conflict.to_dict() == {"key": "moe.latent_size",
                                  "values": [{"idea": wide.key, "value": 48}, {"idea": narrow.key, "value": 32}]}
    assert not Run.objects.exists()


def test_plan_shows_conflicts_without_raising_so_the_page_can_render_them(pic, make_idea, fast_baseline):
    wide, narrow = make_idea("Wide latent", {"moe.latent_size": 48}), make_idea("Narrow latent", LATENT)
    plan = plan_study(user=pic, kind="integration", baseline="tiny-fast", ideas=[wide.key, narrow.key], seeds=[0],
                      max_steps=4)
    assert [c.key for c in plan.conflicts] == ["moe.latent_size"] and plan.arms == []
    assert plan.composed_patch == {"moe.latent_size": 48}


def test_choosing_a_value_resolves_the_conflict(pic, make_idea, fast_baseline):
    wide, narrow = make_idea("Wide latent", {"moe.latent_size": 48}), make_idea("Narrow latent", LATENT)
    study = launch(pic, [wide, narrow], resolutions={"moe.latent_size": 16})
    all_arm = study.arms.get(name="all")
    assert all_arm.patch == {"moe.latent_size": 16}
    assert {run.config["model"]["moe"]["latent_size"] for run in all_arm.runs.all()} == {16}


def test_a_launch_refuses_an_idea_whose_stored_patch_names_a_path(pic, make_idea, fast_baseline):
    # Ideas saved before corpora were registered may hold a path; the launch re-validates every patch.
    idea = make_idea("Old corpus path", {"optim.lr": 0.002})
    Idea.objects.filter(pk=idea.pk).update(recipe_patch={"data.corpus": "/srv/private"})
    with pytest.raises(ValidationError) as caught:
        launch(pic, [idea], kind="ablation")
    assert f"{idea.key}: data.corpus: '/srv/private' is not a registered corpus" in field_error(caught, "ideas")
    assert not Run.objects.exists()


def test_two_blend_ideas_conflict_on_data_blend_and_a_chosen_mixture_resolves_it(pic, make_idea, fast_baseline):
    code = make_idea("Code-heavy mix", {"data.blend": {"stdlib": 0.8, "python-docs": 0.2}})
    docs = make_idea("Docs-heavy mix", {"data.blend": {"stdlib": 0.2, "python-docs": 0.8}})
    plan = plan_study(user=pic, kind="integration", baseline="tiny-fast", ideas=[code.key, docs.key], seeds=[0],
                      max_steps=4)
    [conflict] = plan.conflicts
    assert conflict.to_dict()["values"] == [{"idea": code.key, "value": {"stdlib": 0.8, "python-docs": 0.2}},
                                            {"idea": docs.key, "value": {"stdlib": 0.2, "python-docs": 0.8}}]
    with pytest.raises(ValidationError) as caught:
        launch(pic, [code, docs], resolutions={"data.blend": {"stdlib": 1, "/etc": 1}})
    assert "data.blend: '/etc' is not a registered corpus" in field_error(caught, "resolutions")
    study = launch(pic, [code, docs], resolutions={"data.blend": {"stdlib": 1, "python-docs": 1}})
    runs = study.arms.get(name="all").runs.all()
    assert runs and all(run.config["data"]["blend"] == {"python-docs": 0.5, "stdlib": 0.5} for run in runs)


def test_a_resolution_with_an_invalid_value_names_the_key(pic, make_idea, fast_baseline):
    wide, narrow = make_idea("Wide latent", {"moe.latent_size": 48}), make_idea("Narrow latent", LATENT)
    with pytest.raises(ValidationError) as caught:
        launch(pic, [wide, narrow], resolutions={"moe.latent_size": "big"})
    assert "moe.latent_size: expected int" in field_error(caught, "resolutions")


# ------------------------------------------------------------------------------------------------ bad input


def test_unknown_idea_keys_are_named(pic, make_idea, fast_baseline):
    known = make_idea("a", LATENT)
    with pytest.raises(ValidationError) as caught:
        services.study_launch(user=pic, kind="integration", baseline="tiny-fast", ideas=[known.key, "IDEA-9999"],
                              seeds=[0], max_steps=4)
    assert field_error(caught, "ideas") == "unknown idea key IDEA-9999"


def test_unknown_baseline_is_named(pic, make_idea, fast_baseline):
    with pytest.raises(ValidationError) as caught:
        launch(pic, [make_idea("a", LATENT), make_idea("b", EXPERTS)], baseline="huge-baseline")
    assert field_error(caught, "baseline") == "unknown baseline 'huge-baseline' (known: tiny-fast)"
    with pytest.raises(ValidationError) as caught:
        launch(pic, [Idea.objects.get(title="a"), Idea.objects.get(title="b")], baseline="tiny-fast@7")
    assert "unknown baseline 'tiny-fast@7'" in field_error(caught, "baseline")


def test_a_patch_key_modelzoo_does_not_know_is_named_with_its_idea(pic, make_idea, fast_baseline):
    stale = make_idea("Renamed key", LATENT)
    Idea.objects.filter(pk=stale.pk).update(recipe_patch={"moe.latent_dim": 32})  # valid under an older modelzoo
    with pytest.raises(ValidationError) as caught:
        launch(pic, [stale, make_idea("b", EXPERTS)])
    message = field_error(caught, "ideas")
    assert stale.key in message and "unknown key 'moe.latent_dim'" in message and "moe.latent_size" in message


def test_a_patch_invalid_on_this_baseline_names_the_arm_and_key(pic, make_idea, fast_baseline):
    top6 = make_idea("Top-6 routing", {"moe.top_k": 6})  # fine on nano (8 experts), not on tiny-ci (4)
    with pytest.raises(ValidationError) as caught:
        services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[top6.key], seeds=[0],
                              max_steps=4)
    assert field_error(caught, "ideas").startswith(f"arm +{top6.key}: moe.top_k: 6 exceeds moe.num_experts 4")


def test_an_idea_that_changes_the_budget_is_refused(pic, make_idea, fast_baseline):
    sneaky = make_idea("Train longer", {"train.max_steps": 100})
    with pytest.raises(ValidationError) as caught:
        services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[sneaky.key], seeds=[0],
                              max_steps=4)
    assert f"{sneaky.key} sets train.max_steps, which the study controls" in field_error(caught, "ideas")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("seeds", [], "seeds must be a list of 1 to 16 integers"),
        ("seeds", list(range(17)), "seeds must be a list of 1 to 16 integers"),
        ("seeds", [0, -1], "seed -1 is out of range: seeds are integers from 0 to 2147483647"),
        ("seeds", [2**31], "seed 2147483648 is out of range"),
        ("seeds", [1, 1], "seeds must be distinct"),
        ("max_steps", 0, "max_steps must be an integer from 1 to 1000000, got 0"),
        ("max_steps", 1_000_001, "max_steps must be an integer from 1 to 1000000, got 1000001"),
        ("max_steps", "10", "max_steps must be an integer from 1 to 1000000, got '10'"),
        ("kind", "sweep", "kind must be one of ablation, integration, got 'sweep'"),
        ("backend", "k8s", "backend must be one of local, slurm, got 'k8s'"),
    ],
)
def test_out_of_range_fields_are_named(pic, make_idea, fast_baseline, field, value, message):
    ideas = [make_idea("a", LATENT), make_idea("b", EXPERTS)]
    with pytest.raises(ValidationError) as caught:
        launch(pic, ideas, **{field: value})
    assert message in field_error(caught, field)


def test_an_integration_needs_two_ideas_and_ablations_have_no_leave_one_out(pic, make_idea, fast_baseline):
    idea = make_idea("a", LATENT)
    with pytest.raises(ValidationError) as caught:
        launch(pic, [idea])
    assert field_error(caught, "ideas") == "a integration study needs 2 to 16 ideas, got 1"
    with pytest.raises(ValidationError) as caught:
        launch(pic, [idea], kind="ablation", leave_one_out=True)
    assert field_error(caught, "leave_one_out") == "leave-one-out arms exist only in integration studies"


# ----------------------------------------------------------------------------------------------- permissions


def test_area_volunteers_may_launch_and_outsiders_may_not(volunteer, outsider, make_idea, fast_baseline):
    ideas = [make_idea("a", LATENT), make_idea("b", EXPERTS)]
    assert launch(volunteer, ideas).created_by == volunteer
    with pytest.raises(PermissionDenied):
        launch(outsider, ideas)


def test_launching_needs_a_role_in_every_idea_s_area(pic, staff, outsider, make_idea, fast_baseline):
    foreign_area = idea_services.area_create(slug="fp4", name="FP4", pic=outsider, by=staff)
    ideas = [make_idea("a", LATENT), make_idea("b", {"fp4.enabled": True}, in_area=foreign_area)]
    with pytest.raises(PermissionDenied):
        launch(pic, ideas)
    assert launch(staff, ideas).created_by == staff


# ------------------------------------------------------------------------------------------- cancel / resume


def test_cancelling_a_queued_run_ends_it_and_cancelling_again_conflicts(pic, outsider, make_idea, fast_baseline):
    run = launch(pic, [make_idea("a", LATENT), make_idea("b", EXPERTS)]).runs.first()
    with pytest.raises(PermissionDenied):
        services.run_cancel(run=run, user=outsider)
    assert services.run_cancel(run=run, user=pic).status == RunStatus.CANCELLED
    assert [a.state for a in run.attempts.all()] == ["cancelled"]
    with pytest.raises(RunStateConflict, match=rf"cannot cancel run {run.public_id}: it is cancelled"):
        services.run_cancel(run=run, user=pic)


def test_resuming_queues_a_new_attempt_but_not_for_live_runs(pic, make_idea, fast_baseline):
    run = launch(pic, [make_idea("a", LATENT), make_idea("b", EXPERTS)]).runs.first()
    with pytest.raises(RunStateConflict, match="it is queued"):
        services.run_resume(run=run, user=pic)
    services.run_cancel(run=run, user=pic)
    attempt = services.run_resume(run=run, user=pic)
    assert (attempt.number, attempt.state) == (2, "queued")
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


def test_cancelling_a_running_run_asks_its_worker_to_stop(pic, make_idea, fast_baseline):
    run = launch(pic, [make_idea("a", LATENT), make_idea("b", EXPERTS)]).runs.first()
    Attempt.objects.filter(run=run).update(state=RunStatus.RUNNING)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    assert services.run_cancel(run=run, user=pic).status == RunStatus.RUNNING
    assert run.attempts.get().cancel_requested_at is not None
