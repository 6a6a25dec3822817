"""Pytest plugin (loaded with `-p tests.support.plugin` from pytest.ini) that owns the suite's services.

It runs before pytest-django imports the settings, because settings read REDIS_URL and DATABASE_URL at
import time:
- Redis: a throw-away server unless REDIS_URL is set.
- PostgreSQL: a throw-away cluster when FLIGHTDECK_REQUIRE_POSTGRES=1 (set by `make test`) and DATABASE_URL
  is unset; otherwise DATABASE_URL or the SQLite default. With FLIGHTDECK_REQUIRE_POSTGRES=1 anything but
  PostgreSQL is an error, so tests marked `requires_postgres` can never be skipped in `make test` or CI.
"""
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import dj_database_url
import pytest

from config.env import env_bool
from tests.support.postgres_cluster import PostgresCluster
from tests.support.celery_processes import CeleryProcess
from tests.support.redis_server import RedisServer

REQUIRE_POSTGRES = "FLIGHTDECK_REQUIRE_POSTGRES"


@dataclass
class Services:
    """What this session started; None where the environment provided the service instead."""

    temp_dir: Path
    redis: RedisServer | None = None
    postgres: PostgresCluster | None = None
    require_postgres: bool = False
    notes: list[str] = field(default_factory=list)


SERVICES = pytest.StashKey[Services]()
# Celery processes a test used; their log tails are appended to its report when it fails.
TEST_PROCESSES = pytest.StashKey[list[CeleryProcess]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    # Build (or load from the cache) the NVFP4 CPU kernels before any test: trainer subprocesses of NVFP4 runs
    # would otherwise each wait for the first build (~30 s on 2 cores) inside some test's time limit.
    from modelzoo import fp4_kernels

    fp4_kernels.ensure_built()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    options = parser.parse_known_args(args)
    if options.help or options.version:
        return
    services = Services(temp_dir=Path(tempfile.mkdtemp(prefix="flightdeck-test-")),
                        require_postgres=env_bool(REQUIRE_POSTGRES, False))
    early_config.stash[SERVICES] = services
    # A cleanup (unlike pytest_unconfigure) also runs when start-up fails half-way, e.g. on a conftest error.
    early_config.add_cleanup(lambda: _stop(services))
    # `timeout … pytest` and cancelled CI jobs send SIGTERM; as Ctrl-C, pytest still tears down fixtures and
    # runs cleanups, so no Redis, PostgreSQL or Celery worker outlives the session.
    signal.signal(signal.SIGTERM, _interrupt)
    # Keep runs, the SQLite default and collected static files out of the developer's var/. WhiteNoise
    # warns about a missing STATIC_ROOT, so it exists (empty: tests serve static files from the finders).
    var_dir = services.temp_dir / "var"
    (var_dir / "staticfiles").mkdir(parents=True)
    os.environ["FLIGHTDECK_VAR_DIR"] = str(var_dir)
    # Playwright's sync API runs an event loop in the main thread; Django would refuse ORM calls there.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    _provide_redis(services)
    provide_database(services)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _provide_redis(services: Services) -> None:
    if "REDIS_URL" in os.environ:
        services.notes.append(f"redis: {os.environ['REDIS_URL']} (from REDIS_URL; restart tests skip)")
        return
    services.redis = RedisServer(services.temp_dir / "redis")
    services.redis.start()
    os.environ["REDIS_URL"] = services.redis.url
    services.notes.append(f"redis: throw-away server at {services.redis.url}")


def provide_database(services: Services) -> None:
    """Set DATABASE_URL for the session, or refuse a non-PostgreSQL one when PostgreSQL is required."""
    url = os.environ.get("DATABASE_URL")
    if url is None and services.require_postgres:
        services.postgres = PostgresCluster()
        services.postgres.start()
        os.environ["DATABASE_URL"] = url = services.postgres.url
        services.notes.append(f"database: throw-away PostgreSQL cluster at {url}")
        return
    engine = dj_database_url.parse(url)["ENGINE"] if url else "django.db.backends.sqlite3"
    if services.require_postgres and engine != "django.db.backends.postgresql":
        raise pytest.UsageError(f"{REQUIRE_POSTGRES}=1 but DATABASE_URL is {url!r} ({engine}); "
                                "unset DATABASE_URL to get a throw-away PostgreSQL cluster")
    services.notes.append(f"database: {engine} ({'DATABASE_URL' if url else 'SQLite default'})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires_postgres: needs PostgreSQL semantics (row locks, real concurrency); skipped on "
                   f"SQLite, and never skipped under {REQUIRE_POSTGRES}=1")


def pytest_report_header(config: pytest.Config) -> list[str]:
    services = config.stash.get(SERVICES, None)
    return services.notes if services else []


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("requires_postgres") is None:
        return
    from django.db import connections

    vendor = connections["default"].vendor
    if vendor != "postgresql":
        # Unreachable under FLIGHTDECK_REQUIRE_POSTGRES=1: configuration already refused non-PostgreSQL.
        pytest.skip(f"needs PostgreSQL, this run uses {vendor}; `make test` runs it on PostgreSQL")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        for process in item.stash.get(TEST_PROCESSES, []):
            report.sections.append((f"log of {process.name} (tail)", process.log_tail(60)))
    return report


def _stop(services: Services) -> None:
    if services.redis is not None:
        services.redis.stop()
    if services.postgres is not None:
        services.postgres.remove()
    shutil.rmtree(services.temp_dir, ignore_errors=True)
