"""An idea and a message factory for the inbox tests, made through the real services; the people, `area` and
`fast_baseline` are the suite's (tests/conftest.py).

Roles: `staff`; `pic` (PIC of `area`); `volunteer` (volunteer of `area`); `submitter` (submits `idea`, so
watches it); `member` (signed in, no area).
"""
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from ideas import services as idea_services
from ideas.models import Area, Idea
from inbox import services
from inbox.events import Event
from inbox.models import Message
from tests.support.people import PASSWORD


@pytest.fixture(autouse=True)
def user_password(fast_password_hashing: None) -> str:
    """The inbox page test signs in through the login form, so everyone made here has a (fast-hashed) password."""
    return PASSWORD


@pytest.fixture
def idea(submitter: User, area: Area) -> Idea:
    return idea_services.idea_create(submitter=submitter, area=area, title="Latent MoE", summary="Smaller experts.",
                                     recipe_patch={"moe.latent_size": 16})


@pytest.fixture
def message_for() -> Callable[..., Message]:
    """Deliver a made-up event to ``user`` through the real service and return the message."""
    serial = iter(range(1, 10_000))

    def make(user: User, subject: str = "Something happened", **fields: str) -> Message:
        key = f"test:{next(serial)}"
        event = Event(kind=fields.get("kind", Message.Kind.IDEA_COMMENT), key=key, recipient_ids=frozenset({user.pk}),
                      subject=subject, body=fields.get("body", "Details."), link=fields.get("link", "/ideas/"))
        services.deliver(event)
        return Message.objects.get(recipient=user, dedupe_key=key)

    return make
