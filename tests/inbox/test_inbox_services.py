"""Who hears of what, and delivery that repeats safely: the inbox services, called in-process."""
import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.http import Http404
from django.utils import timezone

from compute import services as compute_services
from compute.cycles import Calendar, Phase
from compute.models import Pool
from compute.notifications import REQUEST_REVIEWED
from experiments.execution import attempts
from experiments import services as experiment_services
from experiments.models import Run, RunStatus
from experiments.notifications import STUDY_RUN_ENDED
from ideas import notifications
from ideas import services as idea_services
from ideas.lifecycle import Status
from ideas.models import Activity
from ideas.notifications import IDEA_ACTIVITY
from inbox import events, selectors, services
from inbox.models import Message, OutboxEvent
from tests.inbox.flaky_mail import sent_mail


def _recipients(key_prefix: str) -> list[str]:
    messages = Message.objects.filter(dedupe_key__startswith=key_prefix)
    return sorted(messages.values_list("recipient__username", flat=True))


def _activity_of(transition=None, comment=None) -> Activity:
    return Activity.objects.get(transition=transition) if transition else Activity.objects.get(comment=comment)


def test_a_move_reaches_watchers_and_the_area_pic_but_not_the_actor(idea, staff, member):
    idea_services.idea_set_watching(idea=idea, user=member, watching=True)
    transition = idea_services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=staff, note="in scope")
    mail.outbox.clear()

    delivery = services.event_deliver(source=IDEA_ACTIVITY, ref=_activity_of(transition).pk)

    assert (delivery.created, delivery.emailed) == (3, 3)
    assert _recipients("idea-activity:") == ["mona", "pia", "sam"]
    message = Message.objects.get(recipient=member)
    assert message.kind == Message.Kind.IDEA_TRANSITION and message.link == idea.get_absolute_url()
    assert "Status: Submitted → Triaged" in message.body and message.emailed_at is not None  # names, not slugs
    assert sorted(email.to[0] for email in mail.outbox) == ["mona@example.org", "pia@example.org", "sam@example.org"]
    assert "IDEA-0001" in mail.outbox[0].subject
    assert f"http://127.0.0.1:8000{idea.get_absolute_url()}" in mail.outbox[0].body


def test_delivering_an_event_again_neither_shows_nor_mails_it_twice(idea, pic):
    transition = idea_services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic)
    activity_id = _activity_of(transition).pk
    services.event_deliver(source=IDEA_ACTIVITY, ref=activity_id)
    mail.outbox.clear()

    again = services.event_deliver(source=IDEA_ACTIVITY, ref=activity_id)

    assert (again.created, again.emailed) == (0, 0)
    assert mail.outbox == [] and Message.objects.count() == 1


def test_a_comment_reaches_watchers_but_not_the_pic_who_does_not_watch(idea, member, submitter):
    comment = idea_services.comment_create(idea=idea, author=member, body="Run 3 seeds please.")
    services.event_deliver(source=IDEA_ACTIVITY, ref=_activity_of(comment=comment).pk)
    assert _recipients("idea-activity:") == ["sam"]
    assert Message.objects.get().body.endswith("Run 3 seeds please.")


def test_an_activity_that_is_gone_delivers_nothing(db):
    assert services.event_deliver(source=IDEA_ACTIVITY, ref=987654) == services.Delivery(created=0, emailed=0)


def test_a_restricted_area_keeps_its_news_from_watchers_who_left_it(staff, pic, member, submitter):
    area = idea_services.area_create(slug="secret", name="Secret", pic=pic, by=staff, restricted=True)
    idea_services.area_volunteer(area=area, user=member)
    idea = idea_services.idea_create(submitter=member, area=area, title="Hidden", summary="s")
    idea_services.area_leave(area=area, user=member)
    transition = idea_services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=staff)
    services.event_deliver(source=IDEA_ACTIVITY, ref=_activity_of(transition).pk)
    assert _recipients("idea-activity:") == ["pia"]


def _finish(run: Run, state: str) -> None:
    attempt = run.attempts.get(state=RunStatus.QUEUED)
    attempts.attempt_claim(attempt.pk, host="test-host", slot_ids=None)
    attempts.attempt_started(attempt.pk, pid=None, pgid=None)
    attempts.attempt_finish(attempt.pk, host="test-host", state=state, reason="test")


def test_a_study_is_announced_once_its_last_run_ends(idea, volunteer, member, fast_baseline):
    idea_services.idea_set_watching(idea=idea, user=member, watching=True)
    study = experiment_services.study_launch(user=volunteer, kind="ablation", baseline=fast_baseline.name,
                                             ideas=[idea.key], seeds=[1], max_steps=2)
    first, second = study.runs.order_by("pk")
    _finish(first, RunStatus.SUCCEEDED)
    assert services.event_deliver(source=STUDY_RUN_ENDED, ref=study.pk).created == 0  # one run still queued

    _finish(second, RunStatus.FAILED)
    services.event_deliver(source=STUDY_RUN_ENDED, ref=study.pk)
    services.event_deliver(source=STUDY_RUN_ENDED, ref=study.pk)  # the other run's event arrives too

    # The creator, the idea's watchers (its submitter, the member) and its area's PIC; once each.
    assert _recipients("study-finished:") == ["mona", "pia", "sam", "vic"]
    message = Message.objects.get(recipient=volunteer)
    assert message.kind == Message.Kind.STUDY_FINISHED and message.link == study.get_absolute_url()
    assert "failed" in message.subject and "1 succeeded, 1 failed" in message.body


def test_a_resumed_study_that_ends_again_is_announced_again(idea, volunteer, fast_baseline):
    study = experiment_services.study_launch(user=volunteer, kind="ablation", baseline=fast_baseline.name,
                                             ideas=[idea.key], seeds=[1], max_steps=2)
    experiment_services.study_cancel(study=study, user=volunteer)
    services.event_deliver(source=STUDY_RUN_ENDED, ref=study.pk)
    run = study.runs.order_by("pk").first()
    experiment_services.run_resume(run=run, user=volunteer)
    _finish(run, RunStatus.SUCCEEDED)
    services.event_deliver(source=STUDY_RUN_ENDED, ref=study.pk)

    subjects = list(Message.objects.filter(recipient=volunteer).order_by("pk").values_list("subject", flat=True))
    assert len(subjects) == 2 and subjects[0].endswith("cancelled")


@pytest.fixture
def reviewed_request(staff, area, pic, submitter, idea, django_user_model):
    pool = Pool.objects.create(name="h100", gpu_type="H100 80GB", gpu_count=8)
    calendar, now = Calendar.from_settings(), timezone.now()
    # Four weeks ahead: its review phase starts more than a week from now, so it is open for requests.
    window = calendar.window_after(calendar.window_after(calendar.window_containing(now)))
    cycle = compute_services.cycle_ensure(window=window, now=now)
    assert cycle.phase == Phase.OPEN
    reviewer = django_user_model.objects.create_user("rita", email="rita@example.org")
    reviewer.groups.add(Group.objects.get_or_create(name="reviewers")[0])
    request, _ = compute_services.request_submit(requester=submitter, cycle=cycle, pool=pool, area=area, idea=idea,
                                                 gpu_hours=100, justification="pilot", stage="pilot")
    return compute_services.request_review(request=request, reviewer=reviewer, decision="trim", gpu_hours=60,
                                           comment="Half now, more with evidence.")


def test_a_reviewed_request_reaches_the_requester_and_the_pic_not_the_reviewer(reviewed_request):
    services.event_deliver(source=REQUEST_REVIEWED, ref=reviewed_request.pk)
    assert _recipients("request-reviewed:") == ["pia", "sam"]
    message = Message.objects.get(recipient__username="sam")
    assert message.kind == Message.Kind.REQUEST_REVIEWED
    assert "trimmed" in message.subject and "60" in message.subject and "Half now" in message.body
    assert message.link == "/compute/areas/moe-routing/"


def test_services_publish_after_commit_and_never_deliver_inside_the_transaction(
        idea, pic, volunteer, fast_baseline, django_capture_on_commit_callbacks):
    OutboxEvent.objects.all().delete()
    with django_capture_on_commit_callbacks() as callbacks:
        transition = idea_services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic)
    assert Message.objects.count() == 0 and len(_inbox_hooks(callbacks)) == 1
    assert _outbox() == [(IDEA_ACTIVITY, _activity_of(transition).pk)]

    study = experiment_services.study_launch(user=volunteer, kind="ablation", baseline=fast_baseline.name,
                                             ideas=[idea.key], seeds=[1], max_steps=2)
    OutboxEvent.objects.all().delete()
    with django_capture_on_commit_callbacks():
        experiment_services.study_cancel(study=study, user=volunteer)
    assert _outbox() == [(STUDY_RUN_ENDED, study.pk)] * 2


def _inbox_hooks(callbacks: list) -> list:
    """The on-commit hooks the inbox registered (other apps, e.g. the idea-list cache, register their own)."""
    return [hook for hook in callbacks if hook.__module__.startswith("inbox")]


def _outbox() -> list[tuple[str, int]]:
    """What was published and not yet handed to the broker (on-commit hooks captured, not run)."""
    return list(OutboxEvent.objects.order_by("pk").values_list("source", "ref"))


def test_muted_records_without_publishing(idea, pic, django_capture_on_commit_callbacks):
    OutboxEvent.objects.all().delete()
    with django_capture_on_commit_callbacks() as callbacks, notifications.muted():
        idea_services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic)
    assert not _inbox_hooks(callbacks) and not _outbox()
    assert events.muted is notifications.muted  # one switch for every app's notifications


def test_every_app_registers_its_own_sources_and_a_typo_fails_where_it_is_published():
    with pytest.raises(LookupError, match="unknown inbox source 'idea_activty'; registered: idea_activity, "
                                          "request_reviewed, run_failed, study_run_ended"):
        events.publish("idea_activty", 1)
    with pytest.raises(ValueError, match="'idea_activity' is already registered to idea_activity_event"):
        events.source(IDEA_ACTIVITY)(lambda ref: None)


def test_email_opt_out_keeps_the_message_but_sends_no_email(submitter, message_for):
    services.email_preference_set(user=submitter, enabled=False)
    mail.outbox.clear()
    message = message_for(submitter)
    assert mail.outbox == [] and message.emailed_at is None and message.is_unread
    assert selectors.email_enabled(submitter) is False


def test_a_mail_failure_raises_for_a_retry_that_mails_only_the_rest(settings, monkeypatch, tmp_path, idea, staff,
                                                                    member):
    settings.EMAIL_BACKEND = "tests.inbox.flaky_mail.FailOnceBackend"
    monkeypatch.setenv("INBOX_TEST_MAIL_DIR", str(tmp_path))  # nothing else writes there
    idea_services.idea_set_watching(idea=idea, user=member, watching=True)
    transition = idea_services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=staff)
    activity_id = _activity_of(transition).pk

    with pytest.raises(OSError, match="closed the connection"):
        services.event_deliver(source=IDEA_ACTIVITY, ref=activity_id)
    assert Message.objects.count() == 3 and Message.objects.filter(emailed_at__isnull=True).count() == 1
    assert len(sent_mail(tmp_path)) == 2  # the other recipients were mailed despite the failure

    retry = services.event_deliver(source=IDEA_ACTIVITY, ref=activity_id)
    assert (retry.created, retry.emailed) == (0, 1)
    assert len(sent_mail(tmp_path)) == 3 and not Message.objects.filter(emailed_at__isnull=True).exists()


def test_marking_read_touches_only_the_users_own_messages(submitter, member, message_for):
    mine, also_mine, theirs = message_for(submitter), message_for(submitter), message_for(member)
    assert selectors.unread_count(submitter) == 2

    services.message_mark_read(user=submitter, message_id=mine.pk)
    assert selectors.unread_count(submitter) == 1
    with pytest.raises(Http404):
        services.message_mark_read(user=submitter, message_id=theirs.pk)

    assert services.messages_mark_all_read(user=submitter) == 1
    assert selectors.unread_count(submitter) == 0 and selectors.unread_count(member) == 1
    also_mine.refresh_from_db()
    assert not also_mine.is_unread
