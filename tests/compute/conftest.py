"""Fixtures for the compute tests: reviewers, an area with an idea, pools and cycles in each phase; `staff`,
`pic` and `member` are the suite's people (tests/conftest.py).

Everything is made through the real services (ideas' and compute's); pools are admin-managed rows.
"""
from datetime import datetime

import pytest
from django.utils import timezone

from compute import services
from compute.cycles import Calendar, Phase
from compute.models import Cycle, Pool
from ideas import services as idea_services


@pytest.fixture
def reviewer(make_user):
    return make_user("rita", reviewer=True)


@pytest.fixture
def second_reviewer(make_user):
    return make_user("rob", reviewer=True)


@pytest.fixture
def area(pic, staff):
    return idea_services.area_create(slug="routing", name="Routing", pic=pic, by=staff)


@pytest.fixture
def other_area(make_user, staff):
    return idea_services.area_create(slug="fp4", name="FP4", pic=make_user("fred"), by=staff)


@pytest.fixture
def idea(area, member):
    return idea_services.idea_create(submitter=member, area=area, title="Top-2 routing", summary="Try top-2.")


@pytest.fixture
def pool(db):
    return Pool.objects.create(name="h100", gpu_type="H100 80GB", gpu_count=8)


@pytest.fixture
def calendar(settings) -> Calendar:
    return Calendar.from_settings()


def cycle_in_phase(calendar: Calendar, phase: str, now: datetime | None = None) -> Cycle:
    """A cycle that the schedule puts in ``phase`` at ``now``: the current one (published), the one before
    (closed), or one four weeks ahead (open: its review starts more than a week from now)."""
    now = now or timezone.now()
    current = calendar.window_containing(now)
    window = {
        Phase.PUBLISHED: current,
        Phase.CLOSED: calendar.window_before(current),
        Phase.OPEN: calendar.window_after(calendar.window_after(current)),
    }[phase]
    cycle = services.cycle_ensure(window=window, now=now)
    assert cycle.phase == phase
    return cycle


@pytest.fixture
def open_cycle(pool, calendar) -> Cycle:
    return cycle_in_phase(calendar, Phase.OPEN)


@pytest.fixture
def current_cycle(pool, calendar) -> Cycle:
    return cycle_in_phase(calendar, Phase.PUBLISHED)


@pytest.fixture
def closed_cycle(pool, calendar) -> Cycle:
    return cycle_in_phase(calendar, Phase.CLOSED)
