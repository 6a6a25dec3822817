"""Moves ideas.Notification rows into inbox.Message (ideas 0003 then drops the old table).

The text is written the way ``inbox.sources.idea_activity`` writes it, frozen here as migrations must be.
The dedupe key is the same one live delivery uses, so a notification still queued during the upgrade is
not delivered twice. The old code mailed every watcher with an address, so those count as emailed.
"""
from django.db import migrations

KINDS = {"submitted": "idea_submitted", "edited": "idea_edited", "transitioned": "idea_transition",
         "commented": "idea_comment"}
BATCH = 1000


def _text(activity) -> tuple[str, str]:
    idea, actor, verb = activity.idea, activity.actor.username, activity.get_kind_display()
    lines = [f"{actor} {verb} {idea.key}: {idea.title}"]
    if activity.transition is not None:
        lines.append(f"Status: {activity.transition.from_status} → {activity.transition.to_status}")
        if activity.transition.note:
            lines.append(f"Note: {activity.transition.note}")
    if activity.comment is not None:
        lines += ["", activity.comment.body]
    return f"[{idea.key}] {actor} {verb} {idea.title}"[:200], "\n".join(lines)


def forwards(apps, schema_editor):
    Notification = apps.get_model("ideas", "Notification")
    Message = apps.get_model("inbox", "Message")
    rows = Notification.objects.select_related(
        "recipient", "activity__idea", "activity__actor", "activity__transition", "activity__comment"
    ).order_by("pk")
    for notification in rows.iterator(chunk_size=BATCH):
        activity = notification.activity
        subject, body = _text(activity)
        message, created = Message.objects.get_or_create(
            recipient_id=notification.recipient_id, dedupe_key=f"idea-activity:{activity.pk}",
            defaults={"kind": KINDS[activity.kind], "subject": subject, "body": body,
                      "link": f"/ideas/{activity.idea.key}"},
        )
        if created:  # created_at is auto_now_add: keep the original time with an update
            Message.objects.filter(pk=message.pk).update(
                created_at=notification.created_at, read_at=notification.read_at,
                emailed_at=notification.created_at if notification.recipient.email else None,
            )


def backwards(apps, schema_editor):
    Notification = apps.get_model("ideas", "Notification")
    Activity = apps.get_model("ideas", "Activity")
    Message = apps.get_model("inbox", "Message")
    for message in Message.objects.filter(dedupe_key__startswith="idea-activity:").iterator(chunk_size=BATCH):
        activity_id = int(message.dedupe_key.split(":", 1)[1])
        if not Activity.objects.filter(pk=activity_id).exists():  # its idea was deleted since
            continue
        notification, created = Notification.objects.get_or_create(
            recipient_id=message.recipient_id, activity_id=activity_id, defaults={"read_at": message.read_at}
        )
        if created:
            Notification.objects.filter(pk=notification.pk).update(created_at=message.created_at)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0001_initial"),
        ("ideas", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
