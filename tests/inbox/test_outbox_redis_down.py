"""Issue 12.1: with Redis really stopped, saved writes answer normally and their events wait in the outbox
until Redis is back, instead of a 500 after the commit (Django's robust on_commit logged the failing hook
by ``__qualname__``, which a functools.partial lacks) and a lost notification."""
import pytest
from django.test import Client

from inbox import events, services
from inbox.models import OutboxEvent
from ideas.models import Comment, Idea

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit hooks run for real


@pytest.fixture
def broker_retried_at_once(monkeypatch):
    """Forget an earlier failure so the next publish really talks to the broker."""
    monkeypatch.setattr(events._broker_pause, "_until", 0.0)


def test_writes_answer_normally_with_redis_down_and_their_events_are_sent_when_it_returns(
        redis_server, submitter, area, broker_retried_at_once) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(submitter)
    redis_server.stop()

    api = client.post("/api/v1/ideas/", {"title": "a", "summary": "s", "area": area.slug},
                      content_type="application/json")
    assert api.status_code == 201, api.content[:500]
    idea = Idea.objects.get()
    page = client.post(f"/ideas/{idea.key}/comments/", {"body": "first"})
    assert page.status_code in (200, 302), page.content[:500]
    assert Comment.objects.count() == 1
    assert OutboxEvent.objects.count() == 2, "both events wait in the outbox"

    redis_server.start()
    redis_server.clear_broker_state()  # messages earlier tests left in the queues
    events._broker_pause._until = 0.0
    OutboxEvent.objects.update(created_at=OutboxEvent.objects.first().created_at.replace(year=2000))
    assert services.outbox_send() == 2
    assert not OutboxEvent.objects.exists()
    with redis_server.client() as broker:
        assert broker.llen("default") == 2, "both deliveries are queued"


def test_a_sent_event_leaves_no_outbox_row(redis_server, submitter, area, broker_retried_at_once) -> None:
    client = Client()
    client.force_login(submitter)
    assert client.post("/api/v1/ideas/", {"title": "a", "summary": "s", "area": area.slug},
                       content_type="application/json").status_code == 201
    assert not OutboxEvent.objects.exists()


def test_the_end_of_a_run_in_the_worker_is_recorded_and_its_notice_kept_with_redis_down(
        redis_server, pic, area, fast_baseline, broker_retried_at_once) -> None:
    """The worker's side: closing an attempt (here through a cancel, the path a finishing run takes too)
    publishes 'study finished' after commit; with Redis down that used to raise out of execute_attempt."""
    from experiments import services as experiment_services
    from experiments.models import RunStatus
    from ideas import services as idea_services

    idea = idea_services.idea_create(submitter=pic, area=area, title="a", summary="s",
                                     recipe_patch={"optim.lr": 0.002})
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline=fast_baseline.name,
                                             ideas=[idea.key], seeds=[0], max_steps=2)
    OutboxEvent.objects.all().delete()
    redis_server.stop()
    assert experiment_services.study_cancel(study=study, user=pic) == 2
    assert set(study.runs.values_list("status", flat=True)) == {RunStatus.CANCELLED}
    assert list(OutboxEvent.objects.values_list("source", flat=True)) == ["study_run_ended"] * 2
