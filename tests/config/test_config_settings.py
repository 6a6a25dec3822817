"""Settings come from the environment, strictly: bad values fail loudly and name the variable."""
import runpy
import socket
from pathlib import Path

import pytest
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.db.utils import ConnectionHandler
from redis import RedisError

from config import celery_app
from config.env import env_bool, env_int, env_list

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "config" / "settings.py"


def _load_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    """Execute config/settings.py afresh under `env` (the loaded django.conf.settings stay untouched)."""
    for name in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "FLIGHTDECK_ENV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled"])
def test_a_malformed_debug_value_names_the_variable(monkeypatch, raw):
    with pytest.raises(ImproperlyConfigured, match=rf"^DEBUG must be one of .*got '{raw}'"):
        _load_settings(monkeypatch, DEBUG=raw)


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("TRUE", True), (" on ", True), ("0", False),
                                               ("no", False), ("", False)])
def test_debug_accepts_the_usual_spellings(monkeypatch, raw, expected):
    assert _load_settings(monkeypatch, DEBUG=raw)["DEBUG"] is expected


def test_a_malformed_integer_names_the_variable(monkeypatch):
    monkeypatch.setenv("FLIGHTDECK_VISIBILITY_TIMEOUT", "1h")
    with pytest.raises(ImproperlyConfigured, match=r"^FLIGHTDECK_VISIBILITY_TIMEOUT must be an integer, got '1h'"):
        env_int("FLIGHTDECK_VISIBILITY_TIMEOUT", 3600)


def test_lists_are_comma_separated_and_blank_items_dropped(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", " a.example.org, ,b.example.org,")
    assert env_list("ALLOWED_HOSTS", []) == ["a.example.org", "b.example.org"]


def test_an_unset_variable_gives_the_default(monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    assert env_bool("DEBUG", True) is True


def test_an_unknown_environment_name_is_refused(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="FLIGHTDECK_ENV must be 'development' or 'production'"):
        _load_settings(monkeypatch, FLIGHTDECK_ENV="staging")


def test_development_needs_no_variables_at_all(monkeypatch, tmp_path):
    values = _load_settings(monkeypatch, FLIGHTDECK_VAR_DIR=str(tmp_path))
    assert values["DEBUG"] is True
    assert values["DATABASES"]["default"]["NAME"] == str(tmp_path / "flightdeck.sqlite3")
    assert values["REDIS_URL"] == "redis://127.0.0.1:6379/0"


def test_the_default_sqlite_database_runs_in_wal_mode(monkeypatch, tmp_path, django_db_blocker):
    values = _load_settings(monkeypatch, FLIGHTDECK_VAR_DIR=str(tmp_path))
    connection = ConnectionHandler(values["DATABASES"])["default"]
    # A connection of its own to a scratch file, not the test database pytest-django guards.
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 20000
        connection.close()


def test_the_celery_app_gets_the_reliability_settings():
    conf = celery_app.conf
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_connection_retry_on_startup is True
    # Must outlast the longest task, or Redis hands a running message to a second worker.
    assert conf.broker_transport_options["visibility_timeout"] >= 3600
    assert conf.task_default_queue == "default"


@pytest.mark.timeout(60)
def test_the_cache_gives_up_on_a_redis_that_never_answers(settings):
    """Chart caching sits on page paths: a hung Redis must cost a timeout and an error the caller handles, not a
    page that never loads. The socket accepts connections (the kernel's backlog) but never says a word."""
    cache_settings = {key: value for key, value in settings.CACHES["default"].items() if key not in ("BACKEND", "LOCATION")}
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()
        cache = RedisCache(f"redis://{host}:{port}/0", cache_settings)
        with pytest.raises(RedisError):
            cache.get("experiments:study-charts:any")
    # redis-py's own defaults give up too, but only after several seconds: the settings' bounds are what apply.
    connection = cache._cache.get_client().connection_pool.connection_kwargs
    assert connection["socket_connect_timeout"] <= 1 and connection["socket_timeout"] <= 1
