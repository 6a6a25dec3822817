"""Sessions: a new key on sign-in, sign-out deletes the server-side session, "sign out everywhere", and the
cookie flags of production mode."""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from tests.accounts.conftest import PASSWORD

REPO_ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/accounts/login/"


def _signed_in_client(username: str) -> Client:
    client = Client()
    assert client.post(LOGIN, {"username": username, "password": PASSWORD}).status_code == 302
    return client


def _session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_signing_in_gives_a_new_session_key(client, owner):
    # An anonymous session that already exists (e.g. planted by an attacker: session fixation).
    anonymous = client.session
    anonymous["seen_login_page"] = True
    anonymous.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = anonymous.session_key

    assert client.post(LOGIN, {"username": "olga", "password": PASSWORD}).status_code == 302

    assert _session_key(client) != anonymous.session_key
    assert not Session.objects.filter(session_key=anonymous.session_key).exists()
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_signing_out_deletes_the_server_session_so_a_replayed_cookie_is_anonymous(owner):
    client = _signed_in_client("olga")
    old_key = _session_key(client)
    assert Session.objects.filter(session_key=old_key).exists()

    assert client.post("/accounts/logout/").status_code == 302

    assert not Session.objects.filter(session_key=old_key).exists()
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_key
    assert replay.get("/").status_code == 302  # to the sign-in page
    assert replay.get("/api/v1/tokens/").status_code == 401


def test_sign_out_everywhere_ends_all_of_the_users_sessions_and_no_one_elses(owner, outsider):
    laptop, desktop, someone_else = _signed_in_client("olga"), _signed_in_client("olga"), _signed_in_client("oscar")
    assert "2 signed-in browser sessions" in laptop.get("/accounts/tokens/").content.decode()

    response = laptop.post("/accounts/sessions/end-all/", follow=True)

    assert response.redirect_chain[-1][0] == LOGIN
    assert "Signed out everywhere (2 sessions ended)." in response.content.decode()
    for client in (laptop, desktop):
        assert client.get("/").status_code == 302
    assert someone_else.get("/").status_code == 200
    assert Session.objects.count() == 1


def test_sign_out_everywhere_is_post_only(owner):
    client = _signed_in_client("olga")
    assert client.get("/accounts/sessions/end-all/").status_code == 405
    assert client.get("/").status_code == 200


def test_production_mode_sets_secure_httponly_samesite_cookies():
    # Settings are read at import, so production mode is inspected in a fresh process.
    code = ("import json; from django.conf import settings as s; print(json.dumps({name: getattr(s, name) for name in "
            "['SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SECURE', "
            "'CSRF_COOKIE_HTTPONLY', 'CSRF_COOKIE_SAMESITE']}))")
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}}
    env.update(FLIGHTDECK_ENV="production", SECRET_KEY=secrets.token_urlsafe(64),
               ALLOWED_HOSTS="flightdeck.example.org")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    flags = json.loads(result.stdout.strip().splitlines()[-1])
    assert flags == {"SESSION_COOKIE_SECURE": True, "SESSION_COOKIE_HTTPONLY": True, "SESSION_COOKIE_SAMESITE": "Lax",
                     "CSRF_COOKIE_SECURE": True, "CSRF_COOKIE_HTTPONLY": True, "CSRF_COOKIE_SAMESITE": "Lax"}


def test_the_sign_in_response_sets_its_cookie_httponly_and_samesite(client, owner):
    response = client.post(LOGIN, {"username": "olga", "password": PASSWORD})
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
