"""The inbox's contract with the other apps: a registry of event sources, and ``publish``.

Each app builds its own notifications next to where the event happens: its ``notifications`` module (found
and imported by ``InboxConfig.ready``) registers a *source* with ``@source(name)``, a builder that turns a row
id into an :class:`Event` (or None when there is nothing to say), and its services call
``publish(name, ref)`` in the transaction that recorded something.
A published event is only a name and a row id ("look at review 7 now"); after commit the worker re-reads the
rows through the builder and delivers (``inbox.services``). The inbox imports no other app.

An event is first an ``OutboxEvent`` row written in the publisher's transaction; after commit it is handed to
the broker and the row removed. While Redis is away the row stays, the user's action still succeeds, and the
beat task ``send_outbox`` hands it over later (delivery is idempotent, so a repeat is harmless).
"""
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
import logging

from django.db import transaction

from core.redis_guard import PauseAfterFailure

log = logging.getLogger(__name__)

_muted: ContextVar[bool] = ContextVar("inbox_muted", default=False)
# One quick retry covers a pooled connection that predates a Redis restart; after a failure this process
# leaves the broker alone for a while instead of waiting on it once per event.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
_broker_pause = PauseAfterFailure(10.0)


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
    """Record event ``source``/``ref`` in the outbox now and hand it to the broker after commit.

    An unknown ``source`` raises here, in the service that publishes, rather than later in a worker.
    The hook is a plain named function (Django's robust ``on_commit`` logs a failing hook by its
    ``__qualname__``) and catches broker errors itself: the row is committed and is the source of truth, so
    a broker outage never turns a successful action into an error; the outbox row stays for ``send_outbox``.
    """
    _builder(source)
    if _muted.get():
        return
    from inbox.models import OutboxEvent  # models are not ready when apps' notifications modules import this

    pending = OutboxEvent.objects.create(source=source, ref=ref)
    transaction.on_commit(lambda: send_pending(pending.pk, source, ref), robust=True)


def send_pending(outbox_id: int, source: str, ref: int) -> bool:
    """Hand one outbox event to the broker and drop its row; False (row kept) when the broker is away."""
    from inbox.models import OutboxEvent
    from inbox.tasks import deliver_event  # tasks → services → this module: imported when first needed

    if _broker_pause.paused:
        return False
    try:
        deliver_event.apply_async((source, ref), retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as error:  # noqa: BLE001 - any broker failure; send_outbox hands the row over later
        _broker_pause.failed()
        log.warning("inbox: could not send %s #%s (%s); kept in the outbox", source, ref, error)
        return False
    OutboxEvent.objects.filter(pk=outbox_id).delete()
    return True
