"""The ideas tests' own people, areas and ideas, made through the real services; `staff`, `pic`, `member` and
`submitter` are the suite's (tests/conftest.py).

Roles: `staff`; `pic` (PIC of `area`); `other_pic` (PIC of `other_area`); `member` (signed-in, no area);
`submitter` (member who submits the ideas under test).
"""
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from ideas import services
from ideas.models import Area, Idea
from tests.support.people import PASSWORD


@pytest.fixture(autouse=True)
def user_password(fast_password_hashing: None) -> str:
    """Some of these tests sign in through the login form, so everyone they make has a (fast-hashed) password."""
    return PASSWORD


@pytest.fixture
def other_pic(make_user: Callable[..., User]) -> User:
    return make_user("otto")


@pytest.fixture
def area(staff: User, pic: User) -> Area:
    """Unlike the suite's `area`, one without volunteers."""
    return services.area_create(slug="moe-routing", name="MoE routing", description="Routers.", pic=pic, by=staff)


@pytest.fixture
def other_area(staff: User, other_pic: User) -> Area:
    return services.area_create(slug="fp4-numerics", name="FP4 numerics", pic=other_pic, by=staff)


@pytest.fixture
def make_idea(submitter: User, area: Area) -> Callable[..., Idea]:
    def make(**overrides) -> Idea:
        fields = {
            "submitter": submitter,
            "area": area,
            "title": "Latent MoE with latent size 64",
            "summary": "Project tokens to a **latent** before routed experts.",
            "recipe_patch": {"moe.latent_size": 64},
            "tags": ["latent", "moe"],
        }
        fields.update(overrides)
        return services.idea_create(**fields)

    return make


@pytest.fixture
def idea(make_idea: Callable[..., Idea]) -> Idea:
    return make_idea()


@pytest.fixture
def client_for() -> Callable[..., Client]:
    """`client_for(user)` is a test client signed in as ``user`` (CSRF checks on with enforce_csrf_checks=True)."""

    def make(user: User, **client_kwargs) -> Client:
        client = Client(**client_kwargs)
        client.force_login(user)
        return client

    return make
