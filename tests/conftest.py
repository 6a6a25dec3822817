"""Suite-wide fixtures: Redis, Celery processes, a headless browser (see tests/support/README.md), and the
people, area and fast baseline that the app suites share.

The services themselves are started by tests/support/plugin.py before Django reads its settings.
"""
import functools
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from experiments.models import Baseline
from ideas import services as idea_services
from ideas.models import Area
from tests.support import people
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OfflineGuard, screenshot_name
from tests.support.celery_processes import CeleryLauncher, CeleryProcess, SharedWorker, database_url
from tests.support.gunicorn_server import GunicornServer
from tests.support.plugin import SERVICES, TEST_PROCESSES
from tests.support.postgres_cluster import PostgresCluster
from tests.support.redis_server import RedisServer
from tests.support.slurm_cluster import SlurmCluster


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory) -> None:
    """Give SQLite a file test database: Django's default in-memory one is invisible to worker processes."""
    from django.db import connections

    settings_dict = connections["default"].settings_dict
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        settings_dict["TEST"]["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test-flightdeck.sqlite3")


# ------------------------------------------------------------------------------------------------- Redis


def _kept_running(service: RedisServer | PostgresCluster | None, not_owned: str) -> Iterator:
    """Yield one of the session's own services (skip with ``not_owned`` when it came from outside), and start it
    again after the test if the test left it stopped."""
    if service is None:
        pytest.skip(not_owned)
    yield service
    if not service.is_running():
        service.start()


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The session's throw-away Redis; running again after the test even if the test stopped or killed it."""
    yield from _kept_running(request.config.stash[SERVICES].redis,
                             "REDIS_URL points at a Redis this suite does not own; it will not restart or clear it")


# ------------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def postgres_cluster(request: pytest.FixtureRequest) -> Iterator[PostgresCluster]:
    """The session's throw-away PostgreSQL cluster, for fault drills (`.restart()`, `.stop()`, `.start()`);
    running again after the test even if the test left it stopped."""
    yield from _kept_running(request.config.stash[SERVICES].postgres,
                             "the database is not this suite's throw-away PostgreSQL cluster; it will not restart it")


# ------------------------------------------------------------------------------------------------- Slurm


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A real single-node Slurm cluster with accounting (tests/support/slurm_cluster.py), started on first use
    (about 10-30 s) and removed at the end of the session. Its client settings (``SLURM_CONF``) are exported,
    so this process and the workers it starts talk to it with `sbatch`, `sacct`, `scancel`."""
    if shutil.which("slurmctld") is None:
        message = "Slurm is not installed (platform/ensure-debian-packages slurm-wlm munge slurmdbd mariadb-server)"
        if os.environ.get("FLIGHTDECK_REQUIRE_POSTGRES") == "1":  # `make test`, which installs the packages
            pytest.fail(message)
        pytest.skip(message)
    if os.geteuid() != 0:
        pytest.skip("the test Slurm cluster runs slurmd as root (SlurmUser=root), as `make test` does")
    cluster = SlurmCluster()
    cluster.start()
    previous = os.environ.get("SLURM_CONF")
    cluster.export_client_env()
    try:
        yield cluster
    finally:
        cluster.remove()
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


# ------------------------------------------------------------------------------------------------ Celery


@pytest.fixture(scope="session")
def _celery_launcher(django_db_setup: None, tmp_path_factory) -> Iterator[CeleryLauncher]:
    """Session launcher for the shared worker; depends on django_db_setup so it stops before the DB drop."""
    from django.db import connections

    launcher = CeleryLauncher(database_url=database_url(connections["default"].settings_dict),
                              log_dir=tmp_path_factory.mktemp("celery"))
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="session")
def _shared_worker(_celery_launcher: CeleryLauncher) -> SharedWorker:
    return SharedWorker(_celery_launcher)


@pytest.fixture
def celery_worker(request: pytest.FixtureRequest, _shared_worker: SharedWorker, redis_server: RedisServer,
                  transactional_db: None) -> Iterator[CeleryProcess]:
    """A running worker (queues default,gpu; prefork, 2 children) on the test database and the test Redis.

    Shared across tests to save start-up time; the broker is emptied before each test, and after it the worker
    is left to finish what it runs before the database is flushed. Requesting it makes the test transactional,
    because the worker process only sees committed rows.
    """
    redis_server.clear_broker_state()
    worker = _shared_worker.get()
    request.node.stash[TEST_PROCESSES] = [worker]
    yield worker
    _shared_worker.settle()


@pytest.fixture
def celery_processes(request: pytest.FixtureRequest, _celery_launcher: CeleryLauncher, _shared_worker: SharedWorker,
                     redis_server: RedisServer, transactional_db: None, tmp_path: Path) -> Iterator[CeleryLauncher]:
    """Start workers and beat with custom arguments; all of them are stopped after the test.

    The shared worker is stopped first so it cannot take this test's messages.
    """
    if "celery_worker" in request.fixturenames:
        pytest.fail("use either celery_worker or celery_processes in one test, not both")
    _shared_worker.stop()
    redis_server.clear_broker_state()
    launcher = CeleryLauncher(database_url=_celery_launcher.database_url, log_dir=tmp_path)
    request.node.stash[TEST_PROCESSES] = launcher.started
    yield launcher
    launcher.stop_all()


# ------------------------------------------------------------------------------------------------- Web


@pytest.fixture(scope="session")
def _collected_static() -> None:
    """With DEBUG off WhiteNoise serves STATIC_ROOT (the session's temp var dir); collected once, ~2 s."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture
def gunicorn_server(request: pytest.FixtureRequest, _collected_static: None, transactional_db: None,
                    tmp_path: Path) -> Iterator[Callable[..., GunicornServer]]:
    """`gunicorn_server(workers=2, threads=1, extra_args=[...], env={...})` starts real gunicorn
    (`config.wsgi`, DEBUG off, on a free loopback port) on the test database and Redis and returns it once
    every worker has loaded Django; call it again for a second server. All are stopped after the test.
    Makes the test transactional: the server only sees committed rows."""
    from django.db import connections

    url = database_url(connections["default"].settings_dict)
    started: list[GunicornServer] = []
    # Their log tails go into the report of a failed test, like the Celery processes' (a copy: that list
    # may be a Celery launcher's own).
    reported = request.node.stash[TEST_PROCESSES] = list(request.node.stash.get(TEST_PROCESSES, []))

    def start(*, workers: int = 2, threads: int = 1, extra_args: Sequence[str] = (),
              env: dict[str, str] | None = None) -> GunicornServer:
        name = f"gunicorn-{len(started) + 1}"
        server = GunicornServer(database_url=url, log_path=tmp_path / f"{name}.log", workers=workers,
                                threads=threads, extra_args=extra_args, env=env, name=name)
        started.append(server)
        reported.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


# ----------------------------------------------------------------------------------------------- Browser


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium, live_server, transactional_db: None):
    """A fresh page (own cookies) whose relative URLs go to `live_server`; fails if it touched the internet.

    Requesting it makes the test transactional: the live server thread only sees committed rows.
    """
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = OfflineGuard(page)
    yield page
    context.close()
    guard.check()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Path]:
    """`screenshot(page, "label")` saves a full-page PNG under the test's tmp dir and returns its path.

    With FLIGHTDECK_SCREENSHOT_DIR set, a copy also lands there for people to look at.
    """
    def take(page, label: str) -> Path:
        path = tmp_path / screenshot_name(request.node.name, label)
        page.screenshot(path=str(path), full_page=True)
        if target := os.environ.get("FLIGHTDECK_SCREENSHOT_DIR"):
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, Path(target) / path.name)
        return path

    return take


# ------------------------------------------------------------------------------------------------ People
# The cast of the app suites, made by tests/support/people.py: `staff` (stella), `pic` (pia, PIC of `area`),
# `volunteer` (vic, volunteer of `area`), `member` (mona, signed in, no area), `submitter` (sam). A directory's
# conftest overrides what differs there. Tests assert these usernames and the area's slug.


@pytest.fixture
def fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = people.FAST_PASSWORD_HASHERS


@pytest.fixture
def user_password() -> str | None:
    """The password `make_user` gives: none (tests sign in with force_login). A directory whose tests sign in
    through the login form overrides this with an autouse fixture that uses `fast_password_hashing` and returns
    people.PASSWORD."""
    return None


@pytest.fixture
def make_user(db, user_password: str | None) -> Callable[..., User]:
    """`make_user("name", reviewer=True, is_staff=True, ...)`: see people.create_user."""
    return functools.partial(people.create_user, password=user_password)


@pytest.fixture
def staff(make_user: Callable[..., User]) -> User:
    return make_user("stella", is_staff=True)


@pytest.fixture
def pic(make_user: Callable[..., User]) -> User:
    return make_user("pia")


@pytest.fixture
def volunteer(make_user: Callable[..., User]) -> User:
    return make_user("vic")


@pytest.fixture
def member(make_user: Callable[..., User]) -> User:
    return make_user("mona")


@pytest.fixture
def submitter(make_user: Callable[..., User]) -> User:
    return make_user("sam")


@pytest.fixture
def area(staff: User, pic: User, volunteer: User) -> Area:
    """`pic`'s area, where `volunteer` volunteered and the PIC made them a launcher."""
    area = idea_services.area_create(slug="moe-routing", name="MoE routing", pic=pic, by=staff)
    idea_services.area_volunteer(area=area, user=volunteer)
    idea_services.area_launcher_set(area=area, user=volunteer, can_launch=True, by=pic)
    return area


@pytest.fixture
def fast_baseline(db) -> Baseline:
    return people.create_fast_baseline()
