"""What each published event means as messages: who hears about it, and what they read.

Every builder re-reads the rows (the database is the source of truth) and returns None when there is
nothing to say (row deleted since, study still running, no one to tell). Nobody is told of their own act,
and nobody hears of what ``ideas.visibility`` hides from them.
"""
from collections import Counter
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db.models import Max
from django.urls import reverse

from compute.models import Review
from experiments.models import Attempt, RunStatus, Study
from experiments.selectors import study_status
from ideas import visibility
from ideas.models import Activity, Area, Idea
from inbox.events import IDEA_ACTIVITY, REQUEST_REVIEWED, STUDY_RUN_ENDED, Event
from inbox.models import Message

ACTIVITY_KINDS = {
    Activity.Kind.SUBMITTED: Message.Kind.IDEA_SUBMITTED,
    Activity.Kind.EDITED: Message.Kind.IDEA_EDITED,
    Activity.Kind.TRANSITIONED: Message.Kind.IDEA_TRANSITION,
    Activity.Kind.COMMENTED: Message.Kind.IDEA_COMMENT,
}
STUDY_OUTCOMES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def _event(*, kind: str, key: str, recipients: set[int], actor_id: int | None, areas: list[Area], subject: str,
           lines: list[str], link: str) -> Event | None:
    """The event for ``recipients`` but the actor, kept to those who may see every one of ``areas``
    (a watcher who has left a restricted area hears no more of it)."""
    users = get_user_model().objects.filter(pk__in=recipients - {actor_id})
    recipients = {user.pk for user in users if all(visibility.can_view_area(user, area) for area in areas)}
    if not recipients:
        return None
    return Event(kind=kind, key=key, recipient_ids=frozenset(recipients), subject=subject[:200],
                 body="\n".join(lines), link=link)


def idea_activity(activity_id: int) -> Event | None:
    """An idea's watchers hear of everything that happens to it; its area's PIC also of every move."""
    activity = (
        Activity.objects.select_related("idea__area", "actor", "transition", "comment").filter(pk=activity_id).first()
    )
    if activity is None:  # the idea was deleted since
        return None
    idea = activity.idea
    recipients = set(idea.watchers.values_list("pk", flat=True))
    lines = [f"{activity.actor} {activity.get_kind_display()} {idea.key}: {idea.title}"]
    if activity.transition is not None:
        recipients.add(idea.area.pic_id)
        lines.append(f"Status: {activity.transition.from_status} → {activity.transition.to_status}")
        if activity.transition.note:
            lines.append(f"Note: {activity.transition.note}")
    if activity.comment is not None:
        lines += ["", activity.comment.body]
    return _event(
        kind=ACTIVITY_KINDS[activity.kind], key=f"idea-activity:{activity.pk}", recipients=recipients,
        actor_id=activity.actor_id, areas=[idea.area],
        subject=f"[{idea.key}] {activity.actor} {activity.get_kind_display()} {idea.title}",
        lines=lines, link=idea.get_absolute_url(),
    )


def study_run_ended(study_id: int) -> Event | None:
    """Once no run of the study is live: its creator, the watchers of its ideas and their areas' PICs."""
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return None
    runs = list(study.runs.only("id", "status"))
    outcome = study_status(runs)
    if outcome not in STUDY_OUTCOMES:  # still queued or running (a preempted run is re-queued)
        return None
    ideas = list(Idea.objects.filter(studies=study).select_related("area").order_by("study_memberships__position"))
    watchers = get_user_model().objects.filter(watched_ideas__in=ideas).values_list("pk", flat=True)
    # The newest attempt names this finish: a resumed run that ends again is a new event, a retry is not.
    last_attempt = Attempt.objects.filter(run__study=study).aggregate(last=Max("pk"))["last"]
    counts = Counter(run.status for run in runs)
    tally = ", ".join(f"{counts[status]} {status}" for status in RunStatus.values if counts[status])
    lines = [
        f"{study.label} {study.title} ({study.get_kind_display().lower()}) finished: {outcome}.",
        f"Runs: {tally}.",
    ]
    if ideas:
        lines.append("Ideas: " + ", ".join(f"{idea.key} {idea.title}" for idea in ideas))
    return _event(
        kind=Message.Kind.STUDY_FINISHED, key=f"study-finished:{study.pk}:{last_attempt}",
        recipients={study.created_by_id, *watchers, *(idea.area.pic_id for idea in ideas)}, actor_id=None,
        areas=[idea.area for idea in ideas], subject=f"[{study.label}] {study.title} {outcome}", lines=lines,
        link=study.get_absolute_url(),
    )


def request_reviewed(review_id: int) -> Event | None:
    """The requester and the area's PIC hear the reviewer's decision."""
    review = Review.objects.select_related("request__area", "request__idea", "request__pool", "request__cycle",
                                           "reviewer").filter(pk=review_id).first()
    if review is None:
        return None
    request = review.request
    lines = [
        f"{review.reviewer} {request.get_status_display().lower()} request #{request.pk} for {request.target_label}"
        f" ({request.pool.name}, cycle {request.cycle}).",
        f"Requested {review.requested_hours} GPU-h, granted {review.granted_hours} GPU-h.",
    ]
    if review.comment:
        lines += ["", review.comment]
    return _event(
        kind=Message.Kind.REQUEST_REVIEWED, key=f"request-reviewed:{review.pk}",
        recipients={request.requester_id, request.area.pic_id}, actor_id=review.reviewer_id, areas=[request.area],
        subject=f"Compute request #{request.pk} for {request.target_label} {request.get_status_display().lower()}: "
                f"{review.granted_hours} of {review.requested_hours} GPU-h",
        lines=lines, link=reverse("compute:budget", args=[request.area.slug]),
    )


BUILDERS: dict[str, Callable[[int], Event | None]] = {
    IDEA_ACTIVITY: idea_activity,
    STUDY_RUN_ENDED: study_run_ended,
    REQUEST_REVIEWED: request_reviewed,
}
