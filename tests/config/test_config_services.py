"""The suite's own services are real: throw-away Redis, PostgreSQL under `make test`, a Celery worker process."""
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from ideas import services as ideas
from inbox.models import Message
from tests.support.plugin import Services, provide_database
from tests.support.processes import live_group_members


def _wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _comment_on_someone_elses_idea() -> tuple[object, object]:
    """Submitter watches their idea; a colleague's comment must notify them through the worker."""
    users = get_user_model().objects
    staff = users.create_user("ops", is_staff=True)
    pic = users.create_user("pic")
    submitter = users.create_user("submitter")
    colleague = users.create_user("colleague")
    area = ideas.area_create(slug="fp4", name="FP4 numerics", pic=pic, by=staff)
    idea = ideas.idea_create(submitter=submitter, area=area, title="Stochastic rounding in wgrad", summary="Try it.")
    ideas.comment_create(idea=idea, author=colleague, body="Worth a 1B ablation.")
    return idea, submitter


def test_settings_point_at_the_throwaway_redis(redis_server):
    assert settings.REDIS_URL == redis_server.url
    assert settings.CELERY_BROKER_URL == redis_server.url
    with redis_server.client() as client:
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}


@pytest.mark.requires_postgres
@pytest.mark.django_db
def test_the_database_is_really_postgresql():
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")
    assert connection.settings_dict["NAME"].startswith("test_")


def test_a_task_runs_in_the_worker_process_against_the_test_database(celery_worker):
    idea, submitter = _comment_on_someone_elses_idea()
    assert _wait_for(lambda: Message.objects.filter(recipient=submitter, link=idea.get_absolute_url()).exists()), \
        celery_worker.log_tail()
    assert "succeeded" in celery_worker.log_text()


def test_the_shared_worker_keeps_working_across_a_redis_restart(celery_worker, redis_server):
    redis_server.restart()
    idea, submitter = _comment_on_someone_elses_idea()
    assert _wait_for(lambda: Message.objects.filter(recipient=submitter, link=idea.get_absolute_url()).exists()), \
        celery_worker.log_tail()


@pytest.mark.django_db(transaction=True)
def test_between_its_tests_the_shared_worker_takes_no_message(_shared_worker, redis_server):
    """A test without a worker must not have its messages run (and write) while its database is flushed."""
    redis_server.clear_broker_state()
    _shared_worker.get()
    _shared_worker.settle()
    try:
        idea, submitter = _comment_on_someone_elses_idea()
        delivered = Message.objects.filter(recipient=submitter, link=idea.get_absolute_url())
        with redis_server.client() as client:
            assert _wait_for(lambda: client.llen("default") > 0, timeout=5)
            time.sleep(1)  # a consuming worker takes a message within milliseconds
            assert client.llen("default") > 0 and not delivered.exists()

        _shared_worker.get()  # consuming again, it takes what waited
        assert _wait_for(delivered.exists)
    finally:
        _shared_worker.settle()


def test_custom_processes_start_and_a_kill_takes_the_whole_pool_down(celery_processes):
    beat = celery_processes.beat()  # boots while the worker does
    worker = celery_processes.worker(concurrency=1)
    worker.kill()
    assert live_group_members(worker.pid) == []  # the pool child died with its parent
    assert _wait_for(lambda: "beat: Starting" in beat.log_text(), timeout=20), beat.log_tail()


def test_require_postgres_refuses_sqlite_before_django_starts(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    services = Services(temp_dir=tmp_path, require_postgres=True)
    with pytest.raises(pytest.UsageError, match="FLIGHTDECK_REQUIRE_POSTGRES=1 but DATABASE_URL is 'sqlite:///"):
        provide_database(services)
