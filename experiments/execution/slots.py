"""Device slots per host, leased in the database.

A host has one slot per GPU index (``FLIGHTDECK_GPUS``) or, without GPUs, ``FLIGHTDECK_SLOTS`` CPU slots.
The unique (host, slot) row is the lease; several workers on one host therefore never hand out the same
GPU, and a row left behind by an attempt that is no longer live is reclaimed on the next acquire.
"""
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, transaction

from experiments.models import LIVE_STATES, Attempt, SlotLease


def host_slot_ids() -> list[int]:
    """The slot ids of this host: its GPU indices, or 0..FLIGHTDECK_SLOTS-1 on a CPU-only host."""
    if settings.FLIGHTDECK_GPUS:
        return [int(index) for index in settings.FLIGHTDECK_GPUS]
    return list(range(settings.FLIGHTDECK_SLOTS))


def cuda_visible_devices(slot: int | None) -> str:
    """What the trainer sees: its own GPU on a GPU host, none at all on a CPU host."""
    return str(slot) if settings.FLIGHTDECK_GPUS and slot is not None else ""


def slot_acquire(*, host: str, attempt: Attempt, slot_ids: Sequence[int]) -> int | None:
    """Lease the lowest free slot of ``host`` to ``attempt``; None when all are taken. Call inside a
    transaction (``attempts.attempt_claim``)."""
    SlotLease.objects.filter(host=host).exclude(attempt__state__in=LIVE_STATES).delete()
    taken = set(SlotLease.objects.filter(host=host).values_list("slot", flat=True))
    for slot in slot_ids:
        if slot in taken:
            continue
        try:
            with transaction.atomic():  # a savepoint: losing the race for this slot must not abort the claim
                SlotLease.objects.create(host=host, slot=slot, attempt=attempt)
        except IntegrityError:
            continue
        return slot
    return None


def slot_release(*, attempt: Attempt) -> None:
    SlotLease.objects.filter(attempt=attempt).delete()
