"""Ideas for the experiments tests, made through the real services; the people, `area` and `fast_baseline` are
the suite's (tests/conftest.py).

Roles: `pic` (PIC of `area`), `volunteer` (volunteer of `area`), `outsider` (member, no area), `staff`.
"""
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from ideas import services as idea_services
from ideas.models import Area, Idea
from tests.experiments.helpers import api_client_for
from tests.support.people import FAST_OVERRIDES  # noqa: F401  (imported from here by tests that save baselines)


@pytest.fixture
def outsider(make_user: Callable[..., User]) -> User:
    return make_user("olga")


@pytest.fixture
def make_idea(area: Area, pic: User) -> Callable[..., Idea]:
    def make(title: str, patch: dict, *, in_area: Area | None = None) -> Idea:
        return idea_services.idea_create(
            submitter=pic, area=in_area or area, title=title, summary="Why it may help.", recipe_patch=patch
        )

    return make


@pytest.fixture
def web(pic: User) -> Client:
    """A page client signed in as the area's PIC."""
    client = Client()
    client.force_login(pic)
    return client


@pytest.fixture
def api(pic):
    return api_client_for(pic)
