"""Study launches checked against compute grants, and attempts charged to the compute ledger
(experiments/budget.py), through the real services with fake attempt times instead of real training."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from compute import services as compute_services
from compute.cycles import Calendar, Phase
from compute.models import Allocation, LaunchHold, Pool, UsageEntry
from experiments import budget, services
from experiments.execution import attempts
from experiments.models import Attempt, Run, RunStatus
from experiments.planning import plan_study
from ideas import services as idea_services
from tests.support import people

STEPS = 100
TOKENS_PER_RUN = STEPS * 2 * 32  # tiny-fast: batch 2 × sequence 32 per step
MEASURED_TOKENS_PER_S = 1.0


@pytest.fixture
def reviewer(area) -> User:
    """A reviewer who also volunteers in the area, so they may launch its studies."""
    user = User.objects.create_user(username="rita")
    user.groups.add(Group.objects.get_or_create(name="reviewers")[0])
    idea_services.area_volunteer(area=area, user=user)
    idea_services.area_launcher_set(area=area, user=user, can_launch=True, by=area.pic)
    return user


@pytest.fixture
def idea(make_idea):
    """Its arm has the baseline's parameters and tokens, so both arms cost the same (see the per-arm test)."""
    return make_idea("Lower LR", {"optim.lr": 0.002})


@pytest.fixture
def measured(pic, idea, fast_baseline) -> None:
    """A finished earlier study on the recipe (launched before any pool existed, so unbudgeted): its
    throughput is what later launches are forecast from."""
    earlier = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[9],
                                    max_steps=STEPS)
    earlier.runs.update(status=RunStatus.SUCCEEDED, tokens_per_s=MEASURED_TOKENS_PER_S)


@pytest.fixture
def area_grant(settings, measured, area, reviewer) -> Allocation:
    """The area's grant of 5 GPU-h in the current (published) cycle of the default pool."""
    pool = Pool.objects.create(name=settings.FLIGHTDECK_DEFAULT_POOL, gpu_type="CPU slot", gpu_count=8)
    cycle = compute_services.cycle_ensure(window=Calendar.from_settings().window_containing(timezone.now()))
    assert cycle.phase == Phase.PUBLISHED
    admin = User.objects.create_user(username="ana")
    admin.groups.add(Group.objects.get(name="reviewers"))
    return compute_services.allocation_set(cycle=cycle, pool=pool, area=area, gpu_hours=5, actor=admin)


def launch_body(idea, **extra) -> dict:
    return {"kind": "ablation", "baseline": "tiny-fast", "ideas": [idea.key], "seeds": [0, 1], "max_steps": STEPS,
            **extra}


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_launch_over_the_grant_is_refused_with_the_numbers(area_grant, pic, idea):
    response = api(pic).post("/api/v1/studies/", launch_body(idea), format="json")

    assert response.status_code == 409, response.content
    # 2 arms × 2 seeds, each run's tokens at the measured 1 token/s on one CPU slot, in GPU-hours.
    expected = (Decimal(4 * TOKENS_PER_RUN) / Decimal(3600)).quantize(Decimal("0.01"))
    body = response.json()
    assert (Decimal(str(body["requested"])), Decimal(str(body["remaining"]))) == (expected, Decimal("5.00"))
    assert body["can_grant_more"] == ["ana", "rita"]
    assert "refused" in body["detail"] and str(expected) in body["detail"]
    assert Run.objects.count() == 2 and not LaunchHold.objects.exists()  # only the earlier study's runs


def test_a_reviewer_may_override_and_the_override_is_logged(area_grant, reviewer, idea):
    body = launch_body(idea, override=True, override_reason="deadline for the scale-up decision")

    response = api(reviewer).post("/api/v1/studies/", body, format="json")

    assert response.status_code == 201, response.content
    hold = LaunchHold.objects.get(launch_key=budget.study_launch_key(response.json()["id"]))
    assert hold.overridden_by == reviewer and hold.override_reason == "deadline for the scale-up decision"
    assert hold.allocation == area_grant  # the idea has no grant of its own: its area's grant pays


def test_only_reviewers_may_override(area_grant, pic, idea):
    response = api(pic).post("/api/v1/studies/", launch_body(idea, override=True), format="json")

    assert response.status_code == 403
    assert "reviewers" in response.json()["detail"]


def test_a_launch_within_the_grant_reserves_its_estimate(area_grant, pic, idea):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[0],
                                  max_steps=STEPS)

    hold = LaunchHold.objects.get(launch_key=budget.study_launch_key(study.pk))
    assert hold.estimated_hours == (Decimal(2 * TOKENS_PER_RUN) / Decimal(3600)).quantize(Decimal("0.01"))
    assert hold.overridden_by is None


def test_an_integration_across_areas_runs_under_the_first_ideas_area(staff, make_idea, area):
    other = idea_services.area_create(slug="fp4", name="FP4", pic=staff, by=staff)
    first, second = make_idea("Bias", {"optim.lr": 0.002}, in_area=other), make_idea("Latent", {"moe.latent_size": 32})

    target = budget.charge_target("integration", [first, second])

    assert (target.area, target.idea) == (other, None)
    assert budget.charge_target("ablation", [second]) == budget.ChargeTarget(area, second)


def start_attempt(attempt: Attempt, *, started, devices: int) -> None:
    """What a worker's claim and trainer start write, with a chosen start time."""
    Attempt.objects.filter(pk=attempt.pk).update(state=RunStatus.RUNNING, host="worker-1", devices=devices,
                                                  started_at=started, heartbeat_at=started)
    Run.objects.filter(pk=attempt.run_id).update(status=RunStatus.RUNNING)


def usage(attempt: Attempt) -> Decimal:
    return sum(UsageEntry.objects.filter(attempt_key=budget.attempt_charge_key(attempt.pk))
               .values_list("gpu_hours", flat=True), Decimal(0))


def test_an_attempt_is_charged_while_it_runs_and_at_its_end_never_twice(settings, area_grant, pic, idea):
    settings.FLIGHTDECK_CHARGE_SECONDS = 600
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[0],
                                  max_steps=STEPS)
    first, second = (run.attempts.get() for run in study.runs.order_by("id"))
    now = timezone.now()
    start_attempt(first, started=now - timedelta(hours=1), devices=2)
    Attempt.objects.filter(pk=first.pk).update(heartbeat_at=now - timedelta(minutes=30))

    budget.attempt_charge_if_due(first.pk, now=now)  # 30 min since the start: due
    assert usage(first) == Decimal("1.0000")  # 2 devices × 0.5 h
    budget.attempt_charge_if_due(first.pk, now=now + timedelta(minutes=5))  # 5 min after the last charge: not due
    assert UsageEntry.objects.count() == 1

    attempts.attempt_finish(first.pk, host="worker-1", state=RunStatus.SUCCEEDED, reason="done")
    charged = usage(first)
    assert Decimal("1.99") < charged <= Decimal("2.0000")  # 2 devices × the full hour (whole seconds)
    assert budget.attempt_charge(first.pk) == []  # re-processing the finished attempt charges nothing
    assert usage(first) == charged
    assert {entry.allocation_id for entry in UsageEntry.objects.all()} == {area_grant.pk}

    hold = LaunchHold.objects.get(launch_key=budget.study_launch_key(study.pk))
    assert hold.released_at is None  # the baseline run is still queued
    services.run_cancel(run=second.run_id, user=pic)
    hold.refresh_from_db()
    assert hold.released_at is not None and hold.outstanding_hours == 0
    assert second.run.attempts.get().started_at is None and usage(second) == 0  # never ran: nothing charged


def test_an_expired_attempt_is_charged_up_to_its_last_heartbeat(area_grant, pic, idea):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[0],
                                  max_steps=STEPS)
    attempt = study.runs.order_by("id").first().attempts.get()
    now = timezone.now()
    start_attempt(attempt, started=now - timedelta(hours=2), devices=1)
    Attempt.objects.filter(pk=attempt.pk).update(heartbeat_at=now - timedelta(hours=1), lease_expires_at=now)

    attempts.attempt_expire(attempt.pk, now=now + timedelta(seconds=1))

    assert usage(attempt) == Decimal("1.0000")  # only the hour the worker was known alive
    resumed = attempt.run.attempts.get(number=2)
    assert resumed.state == RunStatus.QUEUED
    assert LaunchHold.objects.get(launch_key=budget.study_launch_key(study.pk)).released_at is None


def test_without_any_pool_launches_are_not_budgeted(pic, idea, fast_baseline):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key], seeds=[0],
                                  max_steps=STEPS)

    assert study.runs.count() == 2 and not LaunchHold.objects.exists()


def test_an_unknown_default_pool_is_a_clear_error(settings, area_grant, pic, idea):
    settings.FLIGHTDECK_DEFAULT_POOL = "a100"

    response = api(pic).post("/api/v1/studies/", launch_body(idea, seeds=[0]), format="json")

    assert response.status_code == 400
    assert "FLIGHTDECK_DEFAULT_POOL" in response.json()["pool"][0] and "a100" in response.json()["pool"][0]


def test_the_preview_shows_what_a_launch_reserves_with_every_device_of_a_slurm_job(area_grant, reviewer, idea, settings):
    settings.FLIGHTDECK_SLURM = {**settings.FLIGHTDECK_SLURM, "gpus_per_node": 2}
    services.baseline_save(name="tiny-slurm", recipe="tiny-ci", overrides=people.FAST_OVERRIDES, backend="slurm")
    form = {"kind": "ablation", "baseline": "tiny-slurm", "ideas": [idea.key], "seeds": [0], "max_steps": STEPS}

    plan = plan_study(user=reviewer, **form)
    # Over the 5 GPU-h grant (the preview said so), so a reviewer launches it anyway; the hold still records it.
    study = services.study_launch(user=reviewer, override=True, override_reason="scale-up decision", **form)

    # 2 runs × 2 devices each at the measured 1 token/s: 7.11 GPU-h (one device would be 3.56).
    expected = (Decimal(2 * 2 * TOKENS_PER_RUN) / Decimal(3600)).quantize(Decimal("0.01"))
    hold = LaunchHold.objects.get(launch_key=budget.study_launch_key(study.pk))
    assert plan.estimated_gpu_hours == hold.estimated_hours == expected


def test_each_arm_is_estimated_from_its_own_config(measured, pic, make_idea):
    """Issue 12.7: an arm with twice the batch trains on twice the tokens and costs twice the time."""
    bigger_batch = make_idea("Double batch", {"train.batch_size": 4})
    plan = plan_study(user=pic, kind="ablation", baseline="tiny-fast", ideas=[bigger_batch.key], seeds=[0],
                      max_steps=STEPS)
    assert plan.estimated_gpu_hours == (Decimal(3 * TOKENS_PER_RUN) / Decimal(3600)).quantize(Decimal("0.01"))


def test_an_arm_no_worker_can_hold_is_refused_with_the_limit(measured, pic, make_idea, settings):
    huge_batch = make_idea("Huge batch", {"train.batch_size": 10**30})
    with pytest.raises(ValidationError) as caught:
        plan_study(user=pic, kind="ablation", baseline="tiny-fast", ideas=[huge_batch.key], seeds=[0], max_steps=STEPS)
    message = caught.value.message_dict["ideas"][0]
    assert "tokens per step" in message and str(settings.FLIGHTDECK_MAX_TOKENS_PER_STEP) in message

    settings.FLIGHTDECK_MAX_RUN_PARAMETERS = 1000
    wide = make_idea("Wide", {"moe.num_experts": 16})
    with pytest.raises(ValidationError, match="parameters; a worker holds at most 1000"):
        plan_study(user=pic, kind="ablation", baseline="tiny-fast", ideas=[wide.key], seeds=[0], max_steps=STEPS)
