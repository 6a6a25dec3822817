"""What the other apps call: ``publish(source, ref)`` once the transaction that recorded something commits.

A published event is only a name and a row id ("look at review 7 now"); the worker re-reads the rows, decides
who hears about it (``inbox.sources``) and delivers. This module imports no models, so any app's services
may import it.
"""
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial

from django.db import transaction

# Sources: what ``ref`` is the id of.
IDEA_ACTIVITY = "idea_activity"  # ideas.Activity
STUDY_RUN_ENDED = "study_run_ended"  # experiments.Study whose run just ended; delivered once all its runs have
REQUEST_REVIEWED = "request_reviewed"  # compute.Review

_muted: ContextVar[bool] = ContextVar("inbox_muted", default=False)


@dataclass(frozen=True)
class Event:
    """Something to tell ``recipient_ids``; ``key`` names this occurrence (the messages' ``dedupe_key``)."""

    kind: str
    key: str
    recipient_ids: frozenset[int]
    subject: str
    body: str
    link: str


@contextmanager
def muted() -> Iterator[None]:
    """Record things without notifying anyone (bulk imports, demo data)."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def publish(source: str, ref: int) -> None:
    """Queue delivery of ``source`` event ``ref`` after commit.

    ``robust=True``: the row is already committed and is the source of truth, so a broker outage must not
    turn a successful action into an error page (the notification is lost then; the row is not).
    """
    if _muted.get():
        return
    from inbox.tasks import deliver_event

    transaction.on_commit(partial(deliver_event.delay, source, ref), robust=True)
