"""People and areas for the ideas tests, all made through the real services.

Roles: `staff`; `pic` (PIC of `area`); `other_pic` (PIC of `other_area`); `member` (signed-in, no area);
`submitter` (member who submits the ideas under test).
"""
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from ideas import services
from ideas.models import Area, Idea


PASSWORD = "pw-for-tests-1"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # The default hasher costs ~0.3 s per user by design; these tests create several users each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _make_user(username: str, **flags: bool) -> User:
    return User.objects.create_user(username=username, email=f"{username}@example.org", password=PASSWORD, **flags)


@pytest.fixture
def make_user(db) -> Callable[..., User]:
    return _make_user


@pytest.fixture
def staff(db) -> User:
    return _make_user("stella", is_staff=True)


@pytest.fixture
def pic(db) -> User:
    return _make_user("pia")


@pytest.fixture
def other_pic(db) -> User:
    return _make_user("otto")


@pytest.fixture
def member(db) -> User:
    return _make_user("mona")


@pytest.fixture
def submitter(db) -> User:
    return _make_user("sam")


@pytest.fixture
def area(staff: User, pic: User) -> Area:
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
