"""The inbox's contract with the other apps: a registry of event sources, and ``publish``.

Each app builds its own notifications next to where the event happens: its ``notifications`` module (found
and imported by ``InboxConfig.ready``) registers a *source* with ``@source(name)``, a builder that turns a row
id into an :class:`Event` (or None when there is nothing to say), and its services call
``publish(name, ref)`` in the transaction that recorded something.
A published event is only a name and a row id ("look at review 7 now"); after commit the worker re-reads the
rows through the builder and delivers (``inbox.services``). The inbox imports no other app.
"""
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial

from django.db import transaction

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


Builder = Callable[[int], Event | None]
_builders: dict[str, Builder] = {}


def source(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make ``name`` publishable; the builder re-reads the rows of ``ref`` and says who hears what."""
    def register(builder: Builder) -> Builder:
        if _builders.setdefault(name, builder) is not builder:
            raise ValueError(f"inbox source {name!r} is already registered to {_builders[name].__qualname__}")
        return builder

    return register


def build(source: str, ref: int) -> Event | None:
    """The event ``source``/``ref`` as the database tells it now; None when there is nothing to say."""
    return _builder(source)(ref)


def _builder(source: str) -> Builder:
    try:
        return _builders[source]
    except KeyError:
        raise LookupError(f"unknown inbox source {source!r}; registered: {', '.join(sorted(_builders))}") from None


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

    An unknown ``source`` raises here, in the service that publishes, rather than later in a worker.
    ``robust=True``: the row is already committed and is the source of truth, so a broker outage must not
    turn a successful action into an error page (the notification is lost then; the row is not).
    """
    _builder(source)
    if _muted.get():
        return
    from inbox.tasks import deliver_event  # tasks → services → this module: imported when first needed

    transaction.on_commit(partial(deliver_event.delay, source, ref), robust=True)
