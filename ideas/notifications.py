"""Hands activities to the Celery worker once the transaction that recorded them commits."""
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

from django.db import transaction

_muted: ContextVar[bool] = ContextVar("ideas_notifications_muted", default=False)


@contextmanager
def muted() -> Iterator[None]:
    """Record activities without notifying anyone (bulk imports, demo data)."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def publish(activity_id: int) -> None:
    """Queue watcher notification for ``activity_id`` after commit.

    ``robust=True``: the activity row is already committed and is the source of truth, so a broker
    outage must not turn a successful submission into an error page.
    """
    if _muted.get():
        return
    from ideas.tasks import notify_watchers

    transaction.on_commit(partial(notify_watchers.delay, activity_id), robust=True)
