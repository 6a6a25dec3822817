"""Against the real API rate limit (Redis-counted, answered 429 with Retry-After), the client waits as told
and carries on; a script never sees the 429."""
import time

import pytest

from flightdeck import Client, RateLimited

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tight_limit(settings, redis_server):
    from accounts.ratelimit import KEY_PREFIX

    client = redis_server.client()
    for key in client.scan_iter(f"{KEY_PREFIX}:*"):
        client.delete(key)
    settings.FLIGHTDECK_RATELIMITS = {**settings.FLIGHTDECK_RATELIMITS, "api_user": "2/2s"}


def test_the_client_sits_out_the_servers_retry_after(live_server, member, token_for, tight_limit):
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with Client(live_server.url, token_for(member), sleep=sleep) as client:
        pages = [list(client.ideas.list()) for _ in range(4)]

    assert pages == [[]] * 4
    assert waits and all(0 < wait <= 2 for wait in waits)


def test_without_retries_the_429_carries_the_apis_message(live_server, member, token_for, tight_limit):
    with Client(live_server.url, token_for(member), max_retries=0) as client:
        list(client.ideas.list())
        list(client.ideas.list())
        with pytest.raises(RateLimited) as raised:
            list(client.ideas.list())

    assert raised.value.status == 429 and 0 < raised.value.retry_after <= 2
    assert str(raised.value).startswith("Request was throttled.")
