"""What the compute pages show of experiments: the studies and runs linked as a request's evidence with
their verdicts, seeds and caveats; an area's recent studies with the GPU-hours they used (to prefill "request
more"); and the run and attempt behind each usage charge (the ledger).

compute reads this module through its ``FLIGHTDECK_COMPUTE_EVIDENCE`` setting (``compute.evidence``, which
defines the shapes answered here), so it never imports experiments."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db.models import Sum
from django.urls import Resolver404, resolve

from compute.evidence import ChargedWork, StudyEvidence
from core.types import User
from experiments import selectors
from experiments.budget import attempt_charge_key
from experiments.models import Attempt, Backend, Run, RunStatus, Study, StudyIdea
from experiments.results import results_for
from experiments.visibility import visible_studies
from ideas.models import Area

RECENT_STUDIES = 5
NO_VERDICT = "no verdict yet: no run has finished"


def _linked_ids(link: str) -> tuple[str, int] | None:
    """("study" | "run", id) for a link to a study or run page of this site, else None."""
    if "://" in link or link.startswith("//"):
        return None  # another site's page (wandb, a paper): nothing of ours to show
    try:
        match = resolve(urlsplit(link).path)
    except Resolver404:
        return None
    kinds = {"experiments:study_detail": ("study", "study_id"), "experiments:run_detail": ("run", "run_id")}
    if match.view_name not in kinds:
        return None
    kind, argument = kinds[match.view_name]
    return kind, int(match.kwargs[argument])


def link_evidence(links: Iterable[str]) -> dict[str, StudyEvidence]:
    """The study behind each link to a study or run (a run's own study); other links are left out.
    A fixed number of queries, however many links."""
    targets = {link: ids for link in set(links) if (ids := _linked_ids(link))}
    run_studies = dict(
        Run.objects.filter(pk__in=[pk for kind, pk in targets.values() if kind == "run"]).values_list("pk", "study_id")
    )
    study_of = {link: pk if kind == "study" else run_studies.get(pk) for link, (kind, pk) in targets.items()}
    wanted = {pk for pk in study_of.values() if pk is not None}
    if not wanted:
        return {}
    studies = {study.pk: study for study in selectors.studies_with_arms().filter(pk__in=wanted)}
    results = results_for(studies.values())
    evidence = {}
    for pk, study in studies.items():
        result = results[pk]
        evidence[pk] = StudyEvidence(
            label=study.label, url=study.get_absolute_url(),
            finished=selectors.study_status(study.runs.all()) == RunStatus.SUCCEEDED and result.has_values,
            seeds=len(study.seeds), verdict=tuple(result.verdict or [NO_VERDICT]), caveats=tuple(result.warnings),
        )
    return {link: evidence[pk] for link, pk in study_of.items() if pk in evidence}


def charged_work(attempt_keys: Iterable[str]) -> dict[str, ChargedWork]:
    """The run and attempt behind each ``attempt-<id>`` charge key, in one query."""
    wanted = {key: int(key.removeprefix("attempt-")) for key in set(attempt_keys)
              if key.startswith("attempt-") and key.removeprefix("attempt-").isdigit()}
    attempts = Attempt.objects.filter(pk__in=wanted.values()).select_related("run").only(
        "number", "backend", "host", "external_id", "run__public_id", "run__study_id"
    )
    work = {}
    for attempt in attempts:
        where = f"Slurm job {attempt.external_id}" if attempt.backend == Backend.SLURM and attempt.external_id else f"host {attempt.host or '?'}"
        work[attempt_charge_key(attempt.pk)] = ChargedWork(
            run_label=attempt.run.public_id, run_url=attempt.run.get_absolute_url(), attempt=attempt.number, where=where,
        )
    return work


@dataclass(frozen=True)
class StudyUsage:
    study: Study
    gpu_hours: float


def area_recent_studies(area: Area, *, user: User, limit: int = RECENT_STUDIES) -> list[StudyUsage]:
    """The area's latest studies (any of their ideas in the area) that ``user`` may see, with the GPU-hours
    their runs used."""
    in_area = StudyIdea.objects.filter(idea__area=area).values("study_id")
    studies = visible_studies(user).filter(pk__in=in_area).annotate(used=Sum("runs__gpu_hours")).order_by("-created_at")
    return [StudyUsage(study, study.used or 0.0) for study in studies[:limit]]


def request_prefill(area: Area, *, user: User) -> dict[str, str]:
    """Justification and evidence links for a "request more" form, from the area's recent studies."""
    recent = area_recent_studies(area, user=user)
    if not recent:
        return {}
    lines = [f"- {usage.study.label} {usage.study.title}: {usage.gpu_hours:.2f} GPU-h" for usage in recent]
    total = sum(usage.gpu_hours for usage in recent)
    return {
        "justification": f"Our last {len(recent)} studies used {total:.2f} GPU-h:\n" + "\n".join(lines),
        "evidence_links": "\n".join(usage.study.get_absolute_url() for usage in recent),
    }

