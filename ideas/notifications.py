"""What an idea's activity means as messages, and the rule every app's notifications follow.

Each recorded activity is published to the inbox and delivered once its transaction commits; the builder
re-reads the rows (the database is the source of truth) and returns None when there is nothing to say.
Nobody is told of their own act, and nobody hears of what ``ideas.visibility`` hides from them
(``event_for_viewers``, which experiments and compute use for their own notifications too).
"""
from django.contrib.auth import get_user_model

from ideas import visibility
from ideas.lifecycle import Status
from ideas.models import Activity, Area
from inbox import events
from inbox.events import Event, muted
from inbox.models import Message

__all__ = ["IDEA_ACTIVITY", "event_for_viewers", "idea_activity_event", "muted", "publish"]  # muted: demo data

IDEA_ACTIVITY = "idea_activity"  # ref: an ideas.Activity

ACTIVITY_KINDS = {
    Activity.Kind.SUBMITTED: Message.Kind.IDEA_SUBMITTED,
    Activity.Kind.EDITED: Message.Kind.IDEA_EDITED,
    Activity.Kind.TRANSITIONED: Message.Kind.IDEA_TRANSITION,
    Activity.Kind.COMMENTED: Message.Kind.IDEA_COMMENT,
}


def publish(activity_id: int) -> None:
    """Queue delivery of activity ``activity_id`` after commit (nothing while ``muted()``)."""
    events.publish(IDEA_ACTIVITY, activity_id)


def event_for_viewers(*, kind: str, key: str, recipients: set[int], actor_id: int | None, areas: list[Area],
                      subject: str, lines: list[str], link: str) -> Event | None:
    """The event for ``recipients`` but the actor, kept to those who may see every one of ``areas``
    (a watcher who has left a restricted area hears no more of it); None when no one is left."""
    users = get_user_model().objects.filter(pk__in=recipients - {actor_id})
    recipients = {user.pk for user in users if all(visibility.can_view_area(user, area) for area in areas)}
    if not recipients:
        return None
    return Event(kind=kind, key=key, recipient_ids=frozenset(recipients), subject=subject[:200],
                 body="\n".join(lines), link=link)


@events.source(IDEA_ACTIVITY)
def idea_activity_event(activity_id: int) -> Event | None:
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
        moved = activity.transition
        lines.append(f"Status: {Status(moved.from_status).label} → {Status(moved.to_status).label}")
        if activity.transition.note:
            lines.append(f"Note: {activity.transition.note}")
    if activity.comment is not None:
        lines += ["", activity.comment.body]
    return event_for_viewers(
        kind=ACTIVITY_KINDS[activity.kind], key=f"idea-activity:{activity.pk}", recipients=recipients,
        actor_id=activity.actor_id, areas=[idea.area],
        subject=f"[{idea.key}] {activity.actor} {activity.get_kind_display()} {idea.title}",
        lines=lines, link=idea.get_absolute_url(),
    )
