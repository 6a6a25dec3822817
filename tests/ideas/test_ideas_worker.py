"""The watcher notification task, run by a real Celery worker process over the test Redis."""
import time

from django.core import mail

from ideas import services
from ideas.lifecycle import Status
from ideas.models import Notification


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not true after {timeout} s")


def test_a_real_worker_notifies_watchers_after_commit(celery_worker, make_idea, pic, member):
    idea = make_idea()  # the submitter watches it
    services.idea_set_watching(idea=idea, user=member, watching=True)
    services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic, note="in scope")

    _wait_for(lambda: Notification.objects.filter(activity__transition__isnull=False).count() == 2)
    notified = Notification.objects.filter(activity__transition__isnull=False).values_list("recipient__username", flat=True)
    assert sorted(notified) == ["mona", "sam"]
    # The mail went out from the worker process, not from this one.
    assert mail.outbox == []
    assert "IDEA-0001" in celery_worker.log_text()
