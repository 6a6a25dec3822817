"""Delivery by real Celery worker processes over the test Redis: after commit, with retries, exactly once."""
from django.core import mail

from experiments import services as experiment_services
from ideas import services as idea_services
from ideas.lifecycle import Status
from inbox.models import Message
from tests.inbox.flaky_mail import sent_mail
from tests.support.processes import wait_until


def _all_emailed(messages) -> bool:
    return messages.exists() and not messages.filter(emailed_at__isnull=True).exists()


def test_a_real_worker_delivers_a_move_after_commit(celery_worker, idea, pic, member):
    idea_services.idea_set_watching(idea=idea, user=member, watching=True)
    idea_services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic, note="in scope")

    moved = Message.objects.filter(kind=Message.Kind.IDEA_TRANSITION)
    wait_until(lambda: moved.count() == 2 and _all_emailed(moved), timeout=60, what="inbox delivery",
               alive=celery_worker.is_running, log=celery_worker.log_path)
    assert sorted(moved.values_list("recipient__username", flat=True)) == ["mona", "sam"]
    # The email went out from the worker (its console backend), not from this process.
    assert mail.outbox == []
    assert "Subject: [IDEA-0001] pia moved Latent MoE" in celery_worker.log_text()


def test_a_mail_server_failure_is_retried_and_each_email_goes_out_once(celery_processes, tmp_path, idea, member):
    outbox = tmp_path / "mail"  # not tmp_path itself: the worker's log file lives there
    outbox.mkdir()
    worker = celery_processes.worker(queues=("default",), env={
        "EMAIL_BACKEND": "tests.inbox.flaky_mail.FailOnceBackend", "INBOX_TEST_MAIL_DIR": str(outbox),
    })
    idea_services.idea_set_watching(idea=idea, user=member, watching=True)
    idea_services.comment_create(idea=idea, author=member, body="Three seeds, please.")  # tells the submitter

    commented = Message.objects.filter(kind=Message.Kind.IDEA_COMMENT)
    wait_until(lambda: _all_emailed(commented), timeout=90, what="the retried email", alive=worker.is_running,
               log=worker.log_path)
    assert "Retry in" in worker.log_text()  # the first try failed and Celery scheduled another
    emails = sent_mail(outbox)
    assert len(emails) == 1 and "To: sam@example.org" in emails[0] and commented.count() == 1


def test_a_cancelled_study_is_announced_by_the_worker(celery_processes, idea, volunteer, fast_baseline):
    # Only the default queue: the study's start messages wait on the gpu queue, so its runs stay queued.
    worker = celery_processes.worker(queues=("default",))
    study = experiment_services.study_launch(user=volunteer, kind="ablation", baseline=fast_baseline.name,
                                             ideas=[idea.key], seeds=[1], max_steps=2)
    experiment_services.study_cancel(study=study, user=volunteer)

    announced = Message.objects.filter(kind=Message.Kind.STUDY_FINISHED)
    wait_until(lambda: announced.count() == 3 and _all_emailed(announced), timeout=60, what="study announcement",
               alive=worker.is_running, log=worker.log_path)
    # Both runs' events were delivered; the second found the messages there already.
    assert sorted(announced.values_list("recipient__username", flat=True)) == ["pia", "sam", "vic"]
    assert worker.log_text().count("deliver_event") >= 2
