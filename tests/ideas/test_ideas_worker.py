"""The watcher notification task, run by a real Celery worker process over the test Redis."""
from django.core import mail

from ideas import services
from ideas.lifecycle import Status
from ideas.models import Notification
from tests.support.processes import wait_until


def test_a_real_worker_notifies_watchers_after_commit(celery_worker, make_idea, pic, member):
    idea = make_idea()  # the submitter watches it
    services.idea_set_watching(idea=idea, user=member, watching=True)
    services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic, note="in scope")

    moved = Notification.objects.filter(activity__transition__isnull=False)
    wait_until(lambda: moved.count() == 2, timeout=30, what="watcher notifications", alive=celery_worker.is_running,
               log=celery_worker.log_path)
    notified = moved.values_list("recipient__username", flat=True)
    assert sorted(notified) == ["mona", "sam"]
    # The mail went out from the worker process, not from this one.
    assert mail.outbox == []
    assert "IDEA-0001" in celery_worker.log_text()
