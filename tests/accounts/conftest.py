"""People for the accounts tests, rate-limit counters reset before each test, and the login helper."""
from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User

from accounts.ratelimit import KEY_PREFIX
from tests.support.people import PASSWORD


@pytest.fixture(autouse=True)
def user_password(fast_password_hashing: None) -> str:
    """These tests sign in through the login form many times, so their people have a (fast-hashed) password."""
    return PASSWORD


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    """Every test starts with no sign-in or API hits counted (the counters live in the session's Redis, and
    all test clients come from 127.0.0.1)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{KEY_PREFIX}:*"):
        client.delete(key)
    yield
    client.close()


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user("olga")


@pytest.fixture
def outsider(make_user: Callable[..., User]) -> User:
    return make_user("oscar")


@pytest.fixture
def rates(settings):
    """`rates(login_username="3/1h")` tightens limits for one test (settings are read on every request)."""
    def set_rates(**overrides: str) -> None:
        settings.FLIGHTDECK_RATELIMITS = {**settings.FLIGHTDECK_RATELIMITS, **overrides}

    return set_rates
