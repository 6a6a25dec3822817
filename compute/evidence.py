"""What compute shows of the work behind a request or a charge, supplied through a hook: compute may not
import the experiments app, so the app that knows about studies and runs registers a provider here (in its
``AppConfig.ready``). Without one, requests show their links without verdicts and the ledger shows the
attempt keys it was charged under.

The provider answers for many links or attempt keys at once, in a fixed number of queries.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ideas.models import Area
from ideas.visibility import User


@dataclass(frozen=True)
class StudyEvidence:
    """A study linked from a request (directly or through one of its runs) and what it showed so far."""

    label: str
    url: str
    finished: bool  # every run ended and some succeeded: the evidence is in
    seeds: int  # seeds per arm, as planned
    verdict: tuple[str, ...]  # one line per treatment arm; empty until a run has finished
    caveats: tuple[str, ...]  # e.g. "inside seed noise", "fewer than two seeds"


@dataclass(frozen=True)
class ChargedWork:
    """The run and attempt a usage entry was charged for."""

    run_label: str
    run_url: str
    attempt: int
    where: str  # "host gpu-3" or "Slurm job 1234"


class EvidenceProvider(Protocol):
    def link_evidence(self, links: Iterable[str]) -> dict[str, StudyEvidence]:
        """The study behind each link that points at one of our studies or runs; other links are left out."""

    def request_prefill(self, area: Area, *, user: User) -> dict[str, str]:
        """Justification and evidence links for a "request more" form of ``area``."""

    def charged_work(self, attempt_keys: Iterable[str]) -> dict[str, ChargedWork]:
        """The run and attempt behind each usage entry's ``attempt_key`` that names one."""


class _NoProvider:
    def link_evidence(self, links: Iterable[str]) -> dict[str, StudyEvidence]:
        return {}

    def request_prefill(self, area: Area, *, user: User) -> dict[str, str]:
        return {}

    def charged_work(self, attempt_keys: Iterable[str]) -> dict[str, ChargedWork]:
        return {}


_provider: EvidenceProvider = _NoProvider()


def register(provider: EvidenceProvider) -> None:
    global _provider
    _provider = provider


def provider() -> EvidenceProvider:
    return _provider
