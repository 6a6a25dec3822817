"""What compute's pages show of the work a request rests on, from whichever app runs that work.

compute imports no such app (experiments charges compute's ledger, so the dependency runs that way): the
setting ``FLIGHTDECK_COMPUTE_EVIDENCE`` names a module with the two functions of :class:`EvidenceSource`
(``experiments.evidence`` in this project). Empty, the queue shows no verdicts and "request more" starts
blank.
"""
from collections.abc import Iterable
from importlib import import_module
from typing import Protocol, cast

from django.conf import settings

from core.types import User
from ideas.models import Area


class EvidenceSource(Protocol):
    def link_verdicts(self, links: Iterable[str]) -> dict[str, list[str]]:
        """Verdict lines per link to a study or run of this site; other links are left out."""

    def request_prefill(self, area: Area, *, user: User) -> dict[str, str]:
        """Justification and evidence links for a "request more" form of ``area``, as ``user`` may see them."""


def _source() -> EvidenceSource | None:
    path = settings.FLIGHTDECK_COMPUTE_EVIDENCE
    return cast(EvidenceSource, import_module(path)) if path else None


def link_verdicts(links: Iterable[str]) -> dict[str, list[str]]:
    source = _source()
    return source.link_verdicts(links) if source else {}


def request_prefill(area: Area, *, user: User) -> dict[str, str]:
    source = _source()
    return source.request_prefill(area, user=user) if source else {}
