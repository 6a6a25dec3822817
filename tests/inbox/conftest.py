"""People, an area, an idea and a fast baseline for the inbox tests, all made through the real services.

Roles: `staff`; `pic` (PIC of `area`); `volunteer` (volunteer of `area`); `submitter` (submits `idea`, so
watches it); `member` (signed in, no area).
"""
import pytest
from django.contrib.auth.models import User

from experiments import services as experiment_services
from experiments.models import Baseline
from ideas import services as idea_services
from ideas.models import Area, Idea
from inbox import services
from inbox.events import Event
from inbox.models import Message

PASSWORD = "pw-for-tests-1"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # The default hasher costs ~0.3 s per user by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username: str, **flags: bool) -> User:
    return User.objects.create_user(username=username, email=f"{username}@example.org", password=PASSWORD, **flags)


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
def submitter(db) -> User:
    return _user("sam")


@pytest.fixture
def member(db) -> User:
    return _user("mona")


@pytest.fixture
def area(staff: User, pic: User, volunteer: User) -> Area:
    area = idea_services.area_create(slug="moe-routing", name="MoE routing", pic=pic, by=staff)
    idea_services.area_volunteer(area=area, user=volunteer)
    return area


@pytest.fixture
def idea(submitter: User, area: Area) -> Idea:
    return idea_services.idea_create(submitter=submitter, area=area, title="Latent MoE", summary="Smaller experts.",
                                     recipe_patch={"moe.latent_size": 16})


@pytest.fixture
def fast_baseline(db) -> Baseline:
    return experiment_services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides={"train.log_every": 1})


@pytest.fixture
def message_for():
    """Deliver a made-up event to ``user`` through the real service and return the message."""
    serial = iter(range(1, 10_000))

    def make(user: User, subject: str = "Something happened", **fields: str) -> Message:
        key = f"test:{next(serial)}"
        event = Event(kind=fields.get("kind", Message.Kind.IDEA_COMMENT), key=key, recipient_ids=frozenset({user.pk}),
                      subject=subject, body=fields.get("body", "Details."), link=fields.get("link", "/ideas/"))
        services.deliver(event)
        return Message.objects.get(recipient=user, dedupe_key=key)

    return make
