"""The ideas side of notifications: each recorded activity goes to the inbox once its transaction commits.

Who hears of it and what they read is ``inbox.sources.idea_activity``.
"""
from inbox import events
from inbox.events import muted

__all__ = ["muted", "publish"]  # muted is re-exported: demo data and bulk imports mute notifications here


def publish(activity_id: int) -> None:
    """Queue delivery of activity ``activity_id`` after commit (nothing while ``muted()``)."""
    events.publish(events.IDEA_ACTIVITY, activity_id)
