"""What compute's pages show of the work behind a request or a charge, from whichever app runs that work.

compute imports no such app (experiments charges compute's ledger, so the dependency runs that way): the
setting ``FLIGHTDECK_COMPUTE_EVIDENCE`` names a module with the three functions of :class:`EvidenceSource`
(``experiments.evidence`` in this project). Empty, the desk shows links without verdicts, "request more"
starts blank and the ledger names each charge by the attempt key it was charged under.

The source answers for many links or attempt keys at once, in a fixed number of queries.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import Protocol, cast

from django.conf import settings

from core.types import User
from ideas.models import Area


@dataclass(frozen=True)
class StudyEvidence:
    """A study linked from a request (directly or through one of its runs) and what it showed so far."""

    label: str
    url: str
    finished: bool  # every run ended and some succeeded: the evidence is in
    seeds: int  # seeds per arm, as planned
    verdict: tuple[str, ...]  # one line per treatment arm; a "no verdict yet" line until a run has finished
    caveats: tuple[str, ...]  # e.g. "inside seed noise", "fewer than two seeds"


@dataclass(frozen=True)
class ChargedWork:
    """The run and attempt a usage entry was charged for."""

    run_label: str
    run_url: str
    attempt: int
    where: str  # "host gpu-3" or "Slurm job 1234"


class EvidenceSource(Protocol):
    def link_evidence(self, links: Iterable[str]) -> dict[str, StudyEvidence]:
        """The study behind each link to one of this site's studies or runs; other links are left out."""

    def request_prefill(self, area: Area, *, user: User) -> dict[str, str]:
        """Justification and evidence links for a "request more" form of ``area``, as ``user`` may see them."""

    def charged_work(self, attempt_keys: Iterable[str]) -> dict[str, ChargedWork]:
        """The run and attempt behind each usage entry's ``attempt_key`` that names one."""


def _source() -> EvidenceSource | None:
    path = settings.FLIGHTDECK_COMPUTE_EVIDENCE
    return cast(EvidenceSource, import_module(path)) if path else None


def link_evidence(links: Iterable[str]) -> dict[str, StudyEvidence]:
    source = _source()
    return source.link_evidence(links) if source else {}


def request_prefill(area: Area, *, user: User) -> dict[str, str]:
    source = _source()
    return source.request_prefill(area, user=user) if source else {}


def charged_work(attempt_keys: Iterable[str]) -> dict[str, ChargedWork]:
    source = _source()
    return source.charged_work(attempt_keys) if source else {}
