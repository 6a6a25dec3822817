"""Reads for pages and the API: studies with arms, runs and latest attempts; run metrics as series."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Prefetch, Q, QuerySet

from experiments.models import LIVE_STATES, Arm, Attempt, Baseline, Metric, Run, RunStatus, Study, StudyIdea
from experiments.visibility import run_q, study_q
from ideas.visibility import User
from modelzoo.catalogue import CorpusInfo, corpus_catalogue

Series = list[tuple[int, float]]


def baselines_latest() -> list[Baseline]:
    """The newest version of every baseline name, by name."""
    latest: dict[str, Baseline] = {}
    for baseline in Baseline.objects.order_by("name", "-version"):
        latest.setdefault(baseline.name, baseline)
    return list(latest.values())


def baseline_versions(name: str) -> QuerySet[Baseline]:
    return Baseline.objects.filter(name=name).order_by("-version")


def _runs_with_attempts() -> QuerySet[Run]:
    return Run.objects.order_by("id").prefetch_related(
        Prefetch("attempts", queryset=Attempt.objects.order_by("number"))
    )


def study_list(*, idea_key: str | None = None) -> QuerySet[Study]:
    """Studies, newest first, with baseline and ideas loaded; optionally only those containing an idea."""
    studies = Study.objects.select_related("baseline", "created_by").prefetch_related(
        Prefetch("study_ideas", queryset=StudyIdea.objects.select_related("idea").order_by("position")),
        Prefetch("runs", queryset=Run.objects.only("id", "study_id", "status")),
    )
    if idea_key:
        studies = studies.filter(ideas__key=idea_key)
    return studies


def study_detail(study_id: int, *, user: User | None = None) -> Study:
    """One study with baseline, ideas in order, arms in order and each arm's runs with their attempts
    (``arm.runs.all()`` and ``run.attempts.all()`` cost no further queries). Raises Study.DoesNotExist, also
    when ``user`` may not see it (None: no visibility check, for services and jobs)."""
    return (
        Study.objects.filter(study_q(user) if user is not None else Q()).select_related("baseline", "created_by")
        .prefetch_related(
            Prefetch("study_ideas", queryset=StudyIdea.objects.select_related("idea").order_by("position")),
            # The study's runs (its status) are read before the arms' runs (its results): run states only move
            # forward, so a study read as finished never has arms that still look unfinished.
            Prefetch("runs", queryset=_runs_with_attempts()),
            Prefetch("arms", queryset=Arm.objects.order_by("position").prefetch_related(
                Prefetch("runs", queryset=_runs_with_attempts())
            )),
        )
        .get(pk=study_id)
    )


# The run fields the polled fragments (progress grid, results, a run's live panel) read. Not the resolved config
# and overrides: JSON documents no fragment shows, and loading them with everything else made polls cost as
# much CPU as whole pages.
POLLED_RUN_FIELDS = ("id", "public_id", "study_id", "seed", "status", "step", "max_steps", "tokens", "tokens_per_s",
                     "eta_seconds")


def study_for_polls(study_id: int, *, user: User) -> Study:
    """What the study page's polled fragments read, and no more: the study, its runs and its arms in order with
    their runs (``POLLED_RUN_FIELDS`` only; no baseline, ideas or attempts) — four queries instead of
    ``study_detail``'s seven. Raises Study.DoesNotExist, also when ``user`` may not see it."""
    runs = Run.objects.order_by("id").only(*POLLED_RUN_FIELDS)
    return (
        Study.objects.filter(study_q(user))
        # Study runs (status) before arm runs (results), for the reason given in study_detail.
        .prefetch_related(Prefetch("runs", queryset=runs),
                          Prefetch("arms", queryset=Arm.objects.order_by("position").prefetch_related(
                              Prefetch("runs", queryset=runs))))
        .get(pk=study_id)
    )


def study_status(runs: Iterable[Run]) -> str:
    """One word for a study: running while any run is live, then failed / cancelled if any run ended so
    (preempted runs are re-queued, so they count as live), else succeeded."""
    statuses = {run.status for run in runs}
    if not statuses:
        return RunStatus.QUEUED
    if statuses & {*LIVE_STATES, RunStatus.PREEMPTED}:
        return RunStatus.RUNNING if statuses - {RunStatus.QUEUED} else RunStatus.QUEUED
    for status in (RunStatus.FAILED, RunStatus.CANCELLED):
        if status in statuses:
            return status
    return RunStatus.SUCCEEDED


def run_detail(run_id: int | None = None, *, public_id: str | None = None, user: User | None = None) -> Run:
    """One run with its study, baseline, arms and attempts (oldest first). Raises Run.DoesNotExist, also when
    ``user`` may not see it (None: no visibility check, for services and jobs)."""
    runs = _runs_with_attempts().select_related("study__baseline").prefetch_related("arms")
    if user is not None:
        runs = runs.filter(run_q(user))
    return runs.get(pk=run_id) if public_id is None else runs.get(public_id=public_id)


def run_for_polls(run_id: int, *, user: User) -> Run:
    """A run with what its polled live panel reads: ``POLLED_RUN_FIELDS`` and its attempts (no study, arms or
    config). Raises Run.DoesNotExist, also when ``user`` may not see it."""
    runs = Run.objects.filter(run_q(user)).only(*POLLED_RUN_FIELDS)
    return runs.prefetch_related(Prefetch("attempts", queryset=Attempt.objects.order_by("number"))).get(pk=run_id)


def latest_attempt(run: Run) -> Attempt | None:
    """The run's newest attempt (uses prefetched attempts when present)."""
    attempts = list(run.attempts.all())
    return max(attempts, key=lambda attempt: attempt.number) if attempts else None


def metric_names(run_ids: Iterable[int]) -> list[str]:
    return sorted(set(Metric.objects.filter(run_id__in=list(run_ids)).values_list("name", flat=True)))


def run_metrics(run_ids: Iterable[int], names: Iterable[str] | None = None) -> dict[int, dict[str, Series]]:
    """``{run_id: {metric name: [(step, value), ...] by step}}`` in one query."""
    rows = Metric.objects.filter(run_id__in=list(run_ids))
    if names is not None:
        rows = rows.filter(name__in=list(names))
    series: dict[int, dict[str, Series]] = defaultdict(lambda: defaultdict(list))
    for run_id, name, step, value in rows.order_by("run_id", "name", "step").values_list("run_id", "name", "step", "value"):
        series[run_id][name].append((step, value))
    return {run_id: dict(by_name) for run_id, by_name in series.items()}


def final_metric(run_ids: Iterable[int], name: str) -> dict[int, float]:
    """Each run's value of ``name`` at its last logged step (e.g. final ``val_loss``)."""
    finals: dict[int, float] = {}
    rows = Metric.objects.filter(run_id__in=list(run_ids), name=name).order_by("run_id", "step")
    for run_id, value in rows.values_list("run_id", "value"):
        finals[run_id] = value  # ordered by step, so the last write wins
    return finals


def corpora_list(*, kind: str = "", origin: str = "") -> list[CorpusInfo]:
    """The registered corpora recipes may name, optionally only one origin ("built-in" / "registered") or those
    whose kind starts with ``kind`` (e.g. "prose"). Every signed-in user may use every registered corpus."""
    return [info for info in corpus_catalogue()
            if info.kind.startswith(kind) and (not origin or info.origin == origin)]
