"""The ledger fed by real runs: a study trained by a real Celery worker charges its attempts to the grant it
ran under; the review queue shows the verdicts of studies linked as evidence; "request more" is prefilled
from the area's studies."""
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from rest_framework.test import APIClient

from compute import services
from compute.figures import cycle_figures
from compute.models import LaunchHold, UsageEntry
from experiments import budget
from experiments import services as experiment_services
from experiments.models import Metric, Run, RunStatus, Study
from ideas import services as idea_services
from tests.experiments.conftest import FAST_OVERRIDES
from tests.experiments.helpers import runs_when_done, wait_until


@pytest.fixture
def fast_baseline(db):
    return experiment_services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides=FAST_OVERRIDES)


@pytest.fixture
def patched_idea(area, pic):
    return idea_services.idea_create(submitter=pic, area=area, title="Lower LR", summary="Try a lower LR.",
                                     recipe_patch={"optim.lr": 0.002})


@pytest.mark.timeout(240)
def test_a_trained_ablation_charges_its_attempts_to_the_ideas_grant(celery_worker, current_cycle, pool, area,
                                                                     patched_idea, pic, reviewer, fast_baseline):
    services.allocation_set(cycle=current_cycle, pool=pool, area=area, gpu_hours=10, actor=reviewer)
    idea_grant = services.allocation_set(cycle=current_cycle, pool=pool, area=area, idea=patched_idea, gpu_hours=4,
                                         actor=pic)
    client = APIClient()
    client.force_authenticate(pic)

    response = client.post("/api/v1/studies/", {"kind": "ablation", "baseline": "tiny-fast",
                                                "ideas": [patched_idea.key], "seeds": [0], "max_steps": 3},
                           format="json")
    assert response.status_code == 201, response.content
    study_id = response.json()["id"]
    study = Study.objects.get(pk=study_id)
    runs = wait_until(lambda: runs_when_done(study), timeout=200, what="the runs to finish")

    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 2
    for run in runs:
        [attempt] = run.attempts.all()
        entries = UsageEntry.objects.filter(attempt_key=budget.attempt_charge_key(attempt.pk))
        assert entries.exists(), f"attempt {attempt} was not charged"
        assert {entry.allocation_id for entry in entries} == {idea_grant.pk}
        assert {entry.gpus for entry in entries} == {attempt.devices}
        charged = sum(entry.gpu_hours for entry in entries)
        # Compute charges whole seconds of each segment: at most one second per segment below the wall time.
        exact = Decimal(attempt.devices) * Decimal((attempt.finished_at - attempt.started_at).total_seconds()) / 3600
        assert exact - Decimal(entries.count()) / 3600 - Decimal("0.0001") <= charged <= exact + Decimal("0.0001")
    hold = LaunchHold.objects.get(launch_key=budget.study_launch_key(study_id))
    assert hold.allocation_id == idea_grant.pk and hold.released_at is not None

    # The ledger names each charge's run and attempt and adds up to what the cycle's figures say.
    page_client = Client()
    page_client.force_login(pic)
    ledger = page_client.get(f"/compute/areas/{area.slug}/ledger/?cycle={current_cycle.pk}&idea={patched_idea.key}").content.decode()
    for run in runs:
        assert f'href="{run.get_absolute_url()}">{run.public_id}</a>' in ledger
        assert f"host {run.attempts.get().host}" in ledger
    used = cycle_figures(current_cycle).idea(patched_idea.pk).used
    assert f"<strong>{used}</strong>" in ledger


@pytest.fixture
def funded(current_cycle, pool, area, reviewer):
    """The area's grant in the current cycle, so its studies may launch."""
    return services.allocation_set(cycle=current_cycle, pool=pool, area=area, gpu_hours=10, actor=reviewer)


def finished_ablation(pic, idea, baseline_losses, idea_losses):
    """An ablation whose runs 'finished' with the given final validation losses (one per seed)."""
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key],
                                             seeds=list(range(len(baseline_losses))), max_steps=4)
    for arm_name, losses in (("baseline", baseline_losses), (f"+{idea.key}", idea_losses)):
        for run, loss in zip(study.arms.get(name=arm_name).runs.order_by("seed"), losses):
            Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
            Metric.objects.create(run=run, step=4, name="val_loss", value=loss)
    return study


def test_the_review_queue_shows_the_verdicts_of_linked_studies_and_runs(client, funded, open_cycle, pool, area,
                                                                         patched_idea, pic, member, reviewer,
                                                                         fast_baseline):
    study = finished_ablation(pic, patched_idea, [3.00, 3.02, 2.98], [2.90, 2.91, 2.89])
    run = study.runs.order_by("id").first()
    services.request_submit(requester=member, cycle=open_cycle, pool=pool, area=area, gpu_hours=50, stage="scale-up",
                            justification="The pilot helped.",
                            evidence_links=[study.get_absolute_url(), run.get_absolute_url(), "https://wandb.ai/x"])
    client.force_login(reviewer)

    page = client.get(f"/compute/cycles/{open_cycle.pk}/review/").content.decode()

    row = page.split('class="evidence"', 1)[1].split("</td>", 1)[0]
    assert row.count(f"+{patched_idea.key} beats baseline") == 1  # linked via the study and via its run: one study
    assert f"{study.label}</a> · 3 seeds" in row and "not finished" not in row
    assert "without" not in row  # a scale-up backed by a finished pilot is not flagged
    assert "3.3%" in page  # (2.90 − 3.00) / 3.00 of the mean final validation loss


def test_request_more_is_prefilled_from_the_areas_studies(client, funded, open_cycle, area, patched_idea, pic,
                                                          fast_baseline):
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                             ideas=[patched_idea.key], seeds=[0], max_steps=4)
    study.runs.update(gpu_hours=1.25)
    client.force_login(pic)

    page = client.get(f"/compute/areas/{area.slug}/").content.decode()

    link = page.split('href="/compute/requests/new/?', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    prefill = {key: values[0] for key, values in parse_qs(urlsplit("?" + link).query).items()}
    assert prefill["evidence_links"] == study.get_absolute_url()
    assert f"{study.label} {study.title}: 2.50 GPU-h" in prefill["justification"]  # two runs × 1.25
