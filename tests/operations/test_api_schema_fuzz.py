"""Schemathesis over /api/v1/schema/: every operation (lists and their filters, the launch preview, logs,
baselines, pools and requests included), fed generated (valid and invalid) input against a seeded
database by an authenticated user, never answers 5xx and always answers with a status and body its schema
documents.

The schema is fetched from the Django WSGI app in-process at import time, so the test fuzzes exactly what
drf-spectacular publishes. Each operation gets a bounded, derandomized number of examples (reproducible in
CI). Path parameters, query parameters and body fields that name other rows (area, idea, cycle, baseline, ...)
are drawn half from the generator, half from the seeded rows, so deep code paths (launches, transitions,
reviews, cancels, metrics of a real run) are reached, not just 404s and 400s. Launches stay queued:
nothing commits (the test runs inside one transaction), so no start message ever leaves for a worker.
"""
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import schemathesis
from django.contrib.auth.models import Group, User
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from accounts import services as account_services
from compute import services as compute_services
from compute.cycles import Calendar
from compute.models import Pool
from experiments import services as experiment_services
from ideas import services as idea_services
from ideas.lifecycle import Status
from tests.experiments.finished_runs import finish_study

EXAMPLES_PER_OPERATION = 20

schema = schemathesis.openapi.from_wsgi(
    "/api/v1/schema/",
    get_wsgi_application(),
    config=schemathesis.Config.from_dict({"seed": 20260101}),
)


@dataclass
class Seeded:
    """The fuzzing user's token, and real values for parameter and body fields by name."""

    token: str
    values: dict[str, list]


@pytest.fixture
def same_connection() -> Iterator[None]:
    """Keep the test's transaction across requests: Django's WSGI handler closes 'old' connections at each
    request's start and end, which inside the test transaction would mark it for rollback (Django's own test
    client disconnects the same receivers)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db, same_connection, settings) -> Seeded:
    """A small but complete world made through the services: two areas, ideas in several states, a pool with
    a published cycle (area grant) and an open one (requests), a finished study with metrics, a queued study.
    The fuzzing user is staff, a reviewer and PIC of the first area, so permission checks let it go deep."""
    # Hundreds of requests a minute by one user: the API rate limit would answer 429 (documented) and hide
    # everything behind it.
    settings.FLIGHTDECK_RATELIMITS = {**settings.FLIGHTDECK_RATELIMITS, "api_user": "100000/1m"}
    fuzzer = User.objects.create_user("fuzzer", is_staff=True)  # no password: hashing is slow
    fuzzer.groups.add(Group.objects.create(name="reviewers"))
    other = User.objects.create_user("other")
    moe = idea_services.area_create(slug="moe", name="MoE", pic=fuzzer, by=fuzzer)
    fp4 = idea_services.area_create(slug="fp4", name="FP4", pic=other, by=fuzzer)
    ideas = [
        idea_services.idea_create(submitter=fuzzer, area=moe, title=f"Idea {n}", summary="Why it may help.",
                                  recipe_patch=patch, tags=["moe"])
        for n, patch in enumerate([{"moe.top_k": 1}, {"moe.aux_loss_coef": 0.02}, {"moe.top_k": 1}])
    ]
    parked = idea_services.idea_create(submitter=other, area=fp4, title="Parked", summary="Later.")
    idea_services.idea_transition(idea=parked, to_status=Status.PARKED, by=other)
    idea_services.idea_transition(idea=ideas[0], to_status=Status.TRIAGED, by=fuzzer)
    idea_services.comment_create(idea=ideas[0], author=other, body="Looks promising.")

    pool = Pool.objects.create(name="h100", gpu_type="H100 80GB", gpu_count=8)
    calendar = Calendar.from_settings()
    now = timezone.now()
    current = compute_services.cycle_ensure(window=calendar.window_containing(now), now=now)
    upcoming = compute_services.cycle_ensure(
        window=calendar.window_after(calendar.window_after(calendar.window_containing(now))), now=now)
    compute_services.allocation_set(cycle=current, pool=pool, area=moe, gpu_hours=Decimal("500"), actor=fuzzer)
    request, _ = compute_services.request_submit(
        requester=other, cycle=upcoming, pool=pool, area=fp4, gpu_hours=Decimal("40"),
        justification="Scale-up of the parked FP4 idea.", stage="pilot")

    baseline = experiment_services.baseline_save(name="tiny-fast", recipe="tiny-ci",
                                                 overrides={"train.batch_size": 2, "train.seq_len": 32})
    finished = experiment_services.study_launch(user=fuzzer, kind="ablation", baseline=baseline.label,
                                                ideas=[ideas[0].key], seeds=[0, 1], max_steps=20)
    finish_study(finished, steps=20)
    queued = experiment_services.study_launch(user=fuzzer, kind="integration", baseline=baseline.label,
                                              ideas=[ideas[0].key, ideas[1].key], seeds=[3], max_steps=20)
    keys = [idea.key for idea in (*ideas, parked)]
    return Seeded(
        token=account_services.api_token_create(owner=fuzzer, name="schemathesis").secret,
        values={
            # path parameters
            "slug": [moe.slug, fp4.slug],
            "key": keys,
            "id": [current.pk, upcoming.pk, request.pk],
            "run_id": [run.pk for study in (finished, queued) for run in study.runs.all()],
            "study_id": [finished.pk, queued.pk],
            # query parameters and body fields that name other rows
            # metric names (runs/{id}/metrics/?name=) and baseline names (baselines/{name}/) share the field name
            "name": ["train_loss", "val_loss", baseline.name, baseline.label],
            "launched_by": [fuzzer.username, other.username],
            "kind": ["ablation", "integration"],
            "stage": ["pilot", "scale-up"],
            "attempt": [1],
            "area": [moe.slug, fp4.slug],
            "pic": [fuzzer.username, other.username],
            "cycle": [upcoming.pk, current.pk],
            "pool": [pool.name],
            "idea": keys,
            "ideas": [keys[:1], keys[:2], [keys[0], keys[2]]],
            "baseline": [baseline.name, baseline.label],
            # amounts in range: generated floats are mostly too long for a 2-place decimal and stop at the 400
            "gpu_hours": [12.5, 40],
            "max_steps": [20],
            "seeds": [[0], [0, 1]],
        },
    )


@schema.parametrize()
@schema.given(data=st.data())
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_no_operation_answers_5xx_or_off_schema(case, data, seeded: Seeded) -> None:
    for fields in (case.path_parameters, case.query, case.body):
        if not isinstance(fields, dict):
            continue
        for name in sorted(set(fields) & set(seeded.values)):
            if data.draw(st.booleans(), label=f"use a seeded {name}"):
                fields[name] = data.draw(st.sampled_from(seeded.values[name]), label=name)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {seeded.token}"},
        checks=[schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance,
                schemathesis.checks.status_code_conformance],
    )
