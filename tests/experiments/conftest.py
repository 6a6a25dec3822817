"""People, ideas and baselines for the experiments tests, all made through the real services.

Roles: `pic` (PIC of `area`), `volunteer` (volunteer of `area`), `outsider` (member, no area), `staff`.
`fast_baseline` is tiny-ci shrunk so a run of a few steps takes seconds: it logs every step and
checkpoints every 2 steps, so tests can stop a run part-way and see it resume.
"""
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from experiments import services as experiment_services
from experiments.models import Baseline
from ideas import services as idea_services
from ideas.models import Area, Idea

FAST_OVERRIDES = {
    "train.batch_size": 2,
    "train.seq_len": 32,
    "train.log_every": 1,
    "train.eval_every": 2,
    "train.eval_batches": 1,
    "train.checkpoint_every": 2,
    "optim.warmup_steps": 1,
}


def _user(username: str, **flags: bool) -> User:
    # No password: hashing one costs seconds on a loaded CI machine and these users never log in.
    return User.objects.create_user(username=username, email=f"{username}@example.org", **flags)


@pytest.fixture
def staff(db) -> User:
    return _user("stella", is_staff=True)


@pytest.fixture
def pic(db) -> User:
    return _user("pia")


@pytest.fixture
def volunteer(db) -> User:
    return _user("vic")


@pytest.fixture
def outsider(db) -> User:
    return _user("olga")


@pytest.fixture
def area(staff: User, pic: User, volunteer: User) -> Area:
    area = idea_services.area_create(slug="moe", name="MoE", pic=pic, by=staff)
    idea_services.area_volunteer(area=area, user=volunteer)
    return area


@pytest.fixture
def make_idea(area: Area, pic: User) -> Callable[..., Idea]:
    def make(title: str, patch: dict, *, in_area: Area | None = None) -> Idea:
        return idea_services.idea_create(
            submitter=pic, area=in_area or area, title=title, summary="Why it may help.", recipe_patch=patch
        )

    return make


@pytest.fixture
def fast_baseline(db) -> Baseline:
    return experiment_services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides=FAST_OVERRIDES)

