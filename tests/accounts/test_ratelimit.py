"""Sign-in and API rate limits: counted in the shared Redis (so across web processes), 429 with Retry-After,
client address from X-Forwarded-For only behind a trusted proxy, and what happens when Redis is down."""
import json
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import Client, RequestFactory

from accounts.checks import check_rate_limits
from accounts.ratelimit import Rate, client_ip, parse_rate
from accounts.services import api_token_create
from tests.accounts.conftest import PASSWORD
from tests.support.celery_processes import database_url
from tests.support.gunicorn_server import GunicornServer, SiteClient

LOGIN = "/accounts/login/"
TOKENS = "/api/v1/tokens/"


def _sign_in(client: Client, username: str, password: str, **extra: str):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


# ------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(("text", "rate"), [("10/15m", Rate(10, 900)), ("600/m", Rate(600, 60)),
                                            ("5 / 2h", Rate(5, 7200)), ("1/30s", Rate(1, 30))])
def test_it_parses_rates(text, rate):
    assert parse_rate(text, name="x") == rate


@pytest.mark.parametrize("text", ["", "10", "10/15", "0/1m", "10/0m", "ten/1m", "10/1d"])
def test_it_refuses_malformed_rates_naming_the_setting(text, settings):
    with pytest.raises(ImproperlyConfigured, match=r"FLIGHTDECK_RATELIMITS\['api_user'\]"):
        parse_rate(text, name="api_user")
    settings.FLIGHTDECK_RATELIMITS = {**settings.FLIGHTDECK_RATELIMITS, "api_user": text}
    assert [error.id for error in check_rate_limits()] == ["accounts.E002"]


def test_the_shipped_configuration_passes_the_checks():
    assert check_rate_limits() == []


# ---------------------------------------------------------------------------------------------- client IP


def test_it_ignores_x_forwarded_for_without_a_trusted_proxy(settings):
    settings.FLIGHTDECK_TRUSTED_PROXIES = 0
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(request) == "10.0.0.9"


def test_behind_one_proxy_it_takes_the_entry_the_proxy_appended(settings):
    settings.FLIGHTDECK_TRUSTED_PROXIES = 1
    # The client sent "6.6.6.6" itself to look like someone else; nginx appended the real peer, 203.0.113.7.
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    assert client_ip(request) == "203.0.113.7"
    settings.FLIGHTDECK_TRUSTED_PROXIES = 2
    assert client_ip(request) == "6.6.6.6"


def test_it_falls_back_to_the_peer_when_the_proxy_header_is_missing_or_malformed(settings):
    settings.FLIGHTDECK_TRUSTED_PROXIES = 1
    factory = RequestFactory()
    assert client_ip(factory.get("/", REMOTE_ADDR="127.0.0.1")) == "127.0.0.1"
    assert client_ip(factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="not-an-ip")) == "127.0.0.1"


# ------------------------------------------------------------------------------------------------ sign-in


def test_it_locks_a_username_after_too_many_failed_sign_ins(client, owner, rates):
    rates(login_username="3/1h")
    assert _sign_in(client, "olga", "wrong").status_code == 200
    assert _sign_in(client, "OLGA ", "wrong").status_code == 200  # another spelling is no fresh budget
    locked = _sign_in(client, "olga", "wrong")
    assert locked.status_code == 429
    assert 3500 < int(locked["Retry-After"]) <= 3600
    assert "Too many failed sign-ins" in locked.content.decode()

    # Even the right password is not checked while locked: a guesser learns nothing.
    refused = _sign_in(client, "olga", PASSWORD)
    assert refused.status_code == 429 and "_auth_user_id" not in client.session


def test_a_successful_sign_in_forgets_the_usernames_failures(client, owner, rates):
    rates(login_username="3/1h")
    for _ in range(2):
        assert _sign_in(client, "olga", "wrong").status_code == 200
    assert _sign_in(client, "olga", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(2):
        assert _sign_in(client, "olga", "wrong").status_code == 200


def test_it_locks_an_address_that_guesses_across_many_usernames(client, owner, rates):
    rates(login_ip="3/1h")
    for name in ("a", "b"):
        assert _sign_in(client, name, "wrong").status_code == 200
    assert _sign_in(client, "c", "wrong").status_code == 429
    assert _sign_in(client, "olga", PASSWORD).status_code == 429
    # Another address is not affected.
    assert _sign_in(client, "olga", PASSWORD, REMOTE_ADDR="192.0.2.10").status_code == 302


def test_a_spoofed_forwarded_for_header_does_not_buy_new_attempts(client, owner, rates, settings):
    settings.FLIGHTDECK_TRUSTED_PROXIES = 0
    rates(login_ip="2/1h")
    assert _sign_in(client, "x", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 200
    assert _sign_in(client, "y", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 429


# ---------------------------------------------------------------------------------------------------- API


def test_the_api_answers_429_with_retry_after_once_a_user_exceeds_the_rate(client, owner, rates):
    rates(api_user="3/1h")
    bearer = f"Bearer {api_token_create(owner=owner, name='script').secret}"
    for _ in range(3):
        assert client.get(TOKENS, HTTP_AUTHORIZATION=bearer).status_code == 200
    throttled = client.get(TOKENS, HTTP_AUTHORIZATION=bearer)
    assert throttled.status_code == 429
    body = throttled.json()
    assert set(body) == {"detail", "retry_after"} and 3500 < body["retry_after"] <= 3600
    assert throttled["Retry-After"] == str(body["retry_after"])


def test_a_users_tokens_and_sessions_share_one_budget(client, owner, outsider, rates):
    rates(api_user="2/1h")
    first, second = (f"Bearer {api_token_create(owner=owner, name=n).secret}" for n in ("one", "two"))
    assert client.get(TOKENS, HTTP_AUTHORIZATION=first).status_code == 200
    assert client.get(TOKENS, HTTP_AUTHORIZATION=second).status_code == 200
    client.force_login(owner)
    assert client.get(TOKENS).status_code == 429
    other = f"Bearer {api_token_create(owner=outsider, name='x').secret}"
    assert Client().get(TOKENS, HTTP_AUTHORIZATION=other).status_code == 200


def test_anonymous_api_requests_are_limited_per_address(client, rates):
    rates(api_anon="1/1h")
    assert client.get("/api/v1/schema/").status_code == 200  # the one endpoint open to anonymous clients
    throttled = client.get("/api/v1/schema/?format=json", HTTP_X_FORWARDED_FOR="198.51.100.3")
    assert throttled.status_code == 429 and json.loads(throttled.content)["retry_after"] > 0


def test_the_schema_documents_the_429_answer(client_for_schema):
    operation = client_for_schema["paths"]["/api/v1/tokens/"]["get"]
    assert "429" in operation["responses"]
    assert "Retry-After" in operation["responses"]["429"]["headers"]


@pytest.fixture
def client_for_schema(client, owner) -> dict:
    client.force_login(owner)
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


# ---------------------------------------------------------------------------------------------- Redis down


@pytest.mark.timeout(120)
def test_with_redis_down_the_api_fails_open_and_sign_in_fails_closed(client, owner, redis_server, caplog):
    bearer = f"Bearer {api_token_create(owner=owner, name='script').secret}"
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="accounts.ratelimit"):
        assert client.get(TOKENS, HTTP_AUTHORIZATION=bearer).status_code == 200
    assert "Redis unavailable" in caplog.text

    refused = _sign_in(client, "olga", PASSWORD)
    assert refused.status_code == 503 and refused["Retry-After"] == "30"
    assert "Sign-in is unavailable" in refused.content.decode() and "_auth_user_id" not in client.session

    redis_server.start()
    assert _sign_in(client, "olga", PASSWORD).status_code == 302


# ------------------------------------------------------------------------------------- across web processes


@pytest.fixture
def two_web_processes(transactional_db, tmp_path):
    """Two separate gunicorn servers (one worker each) on the test database and the test Redis."""
    limits = {"FLIGHTDECK_RATELIMIT_LOGIN_USERNAME": "3/1h", "FLIGHTDECK_RATELIMIT_API_USER": "4/1h"}
    servers = [GunicornServer(database_url=database_url(connections["default"].settings_dict), workers=1,
                              log_path=tmp_path / f"web-{name}.log", env=limits, name=f"web {name}")
               for name in ("a", "b")]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.mark.timeout(300)
def test_limits_hold_across_web_processes(two_web_processes, owner):
    a, b = (SiteClient(server.url) for server in two_web_processes)
    for site in (a, b):
        site.get(LOGIN)  # the CSRF cookie

    def sign_in(site: SiteClient, password: str) -> int:
        return site.post(LOGIN, {"username": "olga", "password": password}).status

    assert sign_in(a, "wrong") == 200
    assert sign_in(a, "wrong") == 200
    assert sign_in(b, "wrong") == 429  # the third failure, counted on top of A's two
    assert sign_in(a, PASSWORD) == 429

    headers = {"Authorization": f"Bearer {api_token_create(owner=owner, name='script').secret}"}
    statuses = [site.get(TOKENS, headers=headers).status for site in (a, b, a, b, a)]
    assert statuses == [200, 200, 200, 200, 429]


@pytest.mark.parametrize("spelling", ["ｏlga", "ᵒlga", "OＬGA"])
def test_unicode_spellings_of_a_locked_username_are_locked_too(client, owner, rates, spelling):
    """Issue 12.4, with the real Redis: Django signs in NFKC(name), so the limiter counts that identity."""
    rates(login_username="3/1h")
    for _ in range(2):
        assert _sign_in(client, "olga", "wrong").status_code == 200
    assert _sign_in(client, spelling, "wrong").status_code == 429, "a guess through another spelling counts"
    refused = _sign_in(client, spelling, PASSWORD)
    assert refused.status_code == 429 and "_auth_user_id" not in client.session
