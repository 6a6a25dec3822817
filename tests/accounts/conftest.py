"""People for the accounts tests, rate-limit counters reset before each test, and the login helper."""
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User

from accounts.ratelimit import KEY_PREFIX

PASSWORD = "pw-for-tests-1"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # The default hasher costs ~0.3 s per check by design; these tests sign in many times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    """Every test starts with no sign-in or API hits counted (the counters live in the session's Redis, and
    all test clients come from 127.0.0.1)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{KEY_PREFIX}:*"):
        client.delete(key)
    yield
    client.close()


def _make_user(username: str) -> User:
    return User.objects.create_user(username=username, email=f"{username}@example.org", password=PASSWORD)


@pytest.fixture
def owner(db) -> User:
    return _make_user("olga")


@pytest.fixture
def outsider(db) -> User:
    return _make_user("oscar")


@pytest.fixture
def rates(settings):
    """`rates(login_username="3/1h")` tightens limits for one test (settings are read on every request)."""
    def set_rates(**overrides: str) -> None:
        settings.FLIGHTDECK_RATELIMITS = {**settings.FLIGHTDECK_RATELIMITS, **overrides}

    return set_rates
