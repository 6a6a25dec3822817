"""Every failure of the CLI is one line on stderr naming the problem, and a non-zero exit — never a
traceback: server down, no configuration, a bad or expired token, an unknown key, refused input."""
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from ideas import services as idea_services
from ideas.lifecycle import allowed_targets
from tests.support.processes import free_port


def assert_one_line_error(result, expected: str) -> None:
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr == f"flightdeck: {expected}\n"


def test_server_down(flightdeck_cli):
    url = f"http://127.0.0.1:{free_port()}"

    result = flightdeck_cli("ideas", "list", url=url, token="fd_whatever")

    assert_one_line_error(result, f"cannot reach the Flightdeck server at {url}/api/v1/ (connection refused)")


def test_no_configuration(flightdeck_cli):
    result = flightdeck_cli("studies", "show", "1")

    assert_one_line_error(result, "FLIGHTDECK_URL and FLIGHTDECK_TOKEN not set: export them, or run `flightdeck login`")


@pytest.mark.django_db(transaction=True)
def test_unknown_token(flightdeck_cli, live_server):
    result = flightdeck_cli("ideas", "list", url=live_server.url, token="fd_not-a-token")

    assert_one_line_error(result, "Invalid token. Create a token at /accounts/tokens/ and run `flightdeck login`.")


@pytest.mark.django_db(transaction=True)
def test_expired_token(flightdeck_cli, live_server, member, token_for):
    token = token_for(member)
    ApiToken.objects.filter(owner=member).update(expires_at=timezone.now() - timedelta(minutes=1))

    result = flightdeck_cli("ideas", "show", "IDEA-0001", url=live_server.url, token=token)

    assert_one_line_error(result, "Token expired. Create a token at /accounts/tokens/ and run `flightdeck login`.")


@pytest.mark.django_db(transaction=True)
def test_unknown_idea_key(flightdeck_cli, live_server, member, token_for):
    result = flightdeck_cli("ideas", "show", "IDEA-0999", url=live_server.url, token=token_for(member))

    assert_one_line_error(result, "no idea with key 'IDEA-0999'")


@pytest.mark.django_db(transaction=True)
def test_an_illegal_move_names_the_allowed_ones(flightdeck_cli, live_server, area, pic, token_for):
    idea = idea_services.idea_create(submitter=pic, area=area, title="Top-1", summary="Why.")

    result = flightdeck_cli("ideas", "move", idea.key, "landed", url=live_server.url, token=token_for(pic))

    allowed = ", ".join(allowed_targets(idea.status))
    assert_one_line_error(result, f"cannot move from 'submitted' to 'landed'; allowed: {allowed}")


def test_bad_arguments_are_a_usage_error(flightdeck_cli):
    result = flightdeck_cli("studies", "launch", "--ideas", "IDEA-0001", url="http://127.0.0.1:1", token="t")

    assert result.returncode == 2 and "the following arguments are required: --baseline, --steps" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db(transaction=True)
def test_login_checks_the_token_before_storing_it(flightdeck_cli, live_server, member, token_for, cli_home):
    refused = flightdeck_cli("login", "--url", live_server.url, "--token", "fd_wrong")
    assert_one_line_error(refused, "Invalid token. Create a token at /accounts/tokens/ and run `flightdeck login`.")
    stored = cli_home / ".config" / "flightdeck" / "config.json"
    assert not stored.exists()

    token = token_for(member)
    accepted = flightdeck_cli("login", "--url", live_server.url, stdin=token + "\n")  # the token from stdin

    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout == f"Signed in to {live_server.url}/api/v1/ as mona; saved in {stored}\n"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert flightdeck_cli("ideas", "list").stdout == "(none)\n"  # no variables: the stored ones are used
    assert flightdeck_cli("logout").stdout == f"Removed {stored}\n" and not stored.exists()
