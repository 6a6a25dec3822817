"""Reads for pages and the API: studies with arms, runs and latest attempts; whole metric series as numpy
arrays (the study page loads hundreds of thousands of points), per-run aggregates, an idea's studies.

Not found: a selector that fetches one object answers 404 (``core.selectors.get_or_404``, the convention of
every app's selectors) — also when ``user`` may not see it, so a hidden object and a missing one are
indistinguishable.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.core.exceptions import ValidationError
from django.db.models import Avg, Case, CharField, Count, Exists, Max, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When

from core.selectors import get_or_404
from core.types import User
from experiments.downsample import lttb_indices
from experiments.execution import runfiles
from experiments.models import LIVE_STATES, Arm, Attempt, Baseline, Metric, Run, RunStatus, Study, StudyIdea
from experiments.visibility import run_q, study_q
from modelzoo.catalogue import CorpusInfo, corpus_catalogue

Series = tuple[np.ndarray, np.ndarray]


def baselines_latest() -> QuerySet[Baseline]:
    """The newest version of every baseline name, by name."""
    newer = Baseline.objects.filter(name=OuterRef("name"), version__gt=OuterRef("version"))
    return Baseline.objects.exclude(Exists(newer)).select_related("created_by").order_by("name")


def baseline_versions(name: str) -> QuerySet[Baseline]:
    return Baseline.objects.filter(name=name).order_by("-version")


def _runs_with_attempts() -> QuerySet[Run]:
    return Run.objects.order_by("id").prefetch_related(
        Prefetch("attempts", queryset=Attempt.objects.select_related("cancelled_by").order_by("number"))
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


def study_get(study_id: int, *, user: User) -> Study:
    """The study alone (nothing prefetched), 404 when unknown or hidden from ``user``."""
    return get_or_404(Study.objects.filter(study_q(user)), f"no study {study_id}", pk=study_id)


def study_detail(study_id: int, *, user: User | None = None) -> Study:
    """One study with baseline, ideas in order, arms in order and each arm's runs with their attempts
    (``arm.runs.all()`` and ``run.attempts.all()`` cost no further queries). 404 when unknown, also when
    ``user`` may not see it (None: no visibility check, for services and jobs)."""
    return get_or_404(
        Study.objects.filter(study_q(user) if user is not None else Q()).select_related("baseline", "created_by")
        .prefetch_related(
            Prefetch("study_ideas", queryset=StudyIdea.objects.select_related("idea").order_by("position")),
            # The study's runs (its status) are read before the arms' runs (its results): run states only move
            # forward, so a study read as finished never has arms that still look unfinished.
            Prefetch("runs", queryset=_runs_with_attempts()),
            Prefetch("arms", queryset=Arm.objects.order_by("position").prefetch_related(
                Prefetch("runs", queryset=_runs_with_attempts())
            )),
        ),
        f"no study {study_id}", pk=study_id,
    )


# The run fields the polled fragments (progress grid, results, a run's live panel) read. Not the resolved config
# and overrides: JSON documents no fragment shows, and loading them with everything else made polls cost as
# much CPU as whole pages.
POLLED_RUN_FIELDS = ("id", "public_id", "study_id", "seed", "status", "step", "max_steps", "tokens", "tokens_per_s",
                     "eta_seconds")


def study_for_polls(study_id: int, *, user: User) -> Study:
    """What the study page's polled fragments read, and no more: the study, its runs and its arms in order with
    their runs (``POLLED_RUN_FIELDS`` only; no baseline, ideas or attempts) — four queries instead of
    ``study_detail``'s seven. 404 when unknown, also when ``user`` may not see it."""
    runs = Run.objects.order_by("id").only(*POLLED_RUN_FIELDS)
    return get_or_404(
        Study.objects.filter(study_q(user))
        # Study runs (status) before arm runs (results), for the reason given in study_detail.
        .prefetch_related(Prefetch("runs", queryset=runs),
                          Prefetch("arms", queryset=Arm.objects.order_by("position").prefetch_related(
                              Prefetch("runs", queryset=runs)))),
        f"no study {study_id}", pk=study_id,
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


def _study_status_annotation() -> Case:
    """``study_status`` in SQL, so lists can show and filter by it without loading runs."""
    return Case(
        When(has_runs=False, then=Value(RunStatus.QUEUED)),
        When(has_live=True, has_started=True, then=Value(RunStatus.RUNNING)),
        When(has_live=True, then=Value(RunStatus.QUEUED)),
        When(has_failed=True, then=Value(RunStatus.FAILED)),
        When(has_cancelled=True, then=Value(RunStatus.CANCELLED)),
        default=Value(RunStatus.SUCCEEDED),
        output_field=CharField(),
    )


@dataclass(frozen=True)
class StudyFilters:
    kind: str = ""
    status: str = ""
    idea: str = ""  # idea key
    area: str = ""  # area slug
    launched_by: str = ""  # username
    baseline: str = ""  # "name" (any version) or "name@N"


def study_search(*, user: User, filters: StudyFilters = StudyFilters()) -> QuerySet[Study]:
    """Studies ``user`` may see, newest first, each with ``status`` (as ``study_status`` says) and
    ``run_count`` annotated and baseline, launcher and ideas loaded: a constant number of queries per page."""
    runs = Run.objects.filter(study=OuterRef("pk"))
    studies = (
        Study.objects.filter(study_q(user))
        .annotate(has_runs=Exists(runs), has_live=Exists(runs.filter(status__in=(*LIVE_STATES, RunStatus.PREEMPTED))),
                  has_started=Exists(runs.exclude(status=RunStatus.QUEUED)),
                  has_failed=Exists(runs.filter(status=RunStatus.FAILED)),
                  has_cancelled=Exists(runs.filter(status=RunStatus.CANCELLED)),
                  run_count=Count("runs", distinct=True))
        .annotate(status=_study_status_annotation())
        .select_related("baseline", "created_by")
        .prefetch_related(Prefetch("study_ideas", queryset=StudyIdea.objects.select_related("idea").order_by("position")))
    )
    members = StudyIdea.objects.filter(study=OuterRef("pk"))
    if filters.kind:
        studies = studies.filter(kind=filters.kind)
    if filters.status:
        studies = studies.filter(status=filters.status)
    if filters.idea:
        studies = studies.filter(Exists(members.filter(idea__key=filters.idea)))
    if filters.area:
        studies = studies.filter(Exists(members.filter(idea__area__slug=filters.area)))
    if filters.launched_by:
        studies = studies.filter(created_by__username=filters.launched_by)
    if filters.baseline:
        name, _, version = filters.baseline.partition("@")
        studies = studies.filter(baseline__name=name, **({"baseline__version": version} if version else {}))
    return studies.order_by("-created_at", "-id")


def run_detail(run_id: int | None = None, *, public_id: str | None = None, user: User | None = None) -> Run:
    """One run with its study, baseline, arms and attempts (oldest first). 404 when unknown, also when ``user``
    may not see it (None: no visibility check, for services and jobs)."""
    runs = _runs_with_attempts().select_related("study__baseline").prefetch_related("arms")
    if user is not None:
        runs = runs.filter(run_q(user))
    if public_id is None:
        return get_or_404(runs, f"no run {run_id}", pk=run_id)
    return get_or_404(runs, f"no run {public_id}", public_id=public_id)


def run_for_polls(run_id: int, *, user: User) -> Run:
    """A run with what its polled live panel reads: ``POLLED_RUN_FIELDS`` and its attempts (no study, arms or
    config). 404 when unknown, also when ``user`` may not see it."""
    runs = Run.objects.filter(run_q(user)).only(*POLLED_RUN_FIELDS)
    runs = runs.prefetch_related(Prefetch("attempts", queryset=Attempt.objects.order_by("number")))
    return get_or_404(runs, f"no run {run_id}", pk=run_id)


def latest_attempt(run: Run) -> Attempt | None:
    """The run's newest attempt (uses prefetched attempts when present)."""
    attempts = list(run.attempts.all())
    return max(attempts, key=lambda attempt: attempt.number) if attempts else None


@dataclass(frozen=True)
class LogChunk:
    attempt: int  # the attempt's number
    offset: int
    next_offset: int
    text: str
    complete: bool  # the attempt has ended and nothing is left to read


def attempt_log(attempt: Attempt, *, offset: int = 0) -> LogChunk:
    """A chunk of the attempt's whole log from byte ``offset`` (``runfiles.log_chunk``). Where the file is not on
    this host (another worker machine), the tail kept on the attempt row stands in for it."""
    ended = attempt.state not in (*LIVE_STATES, RunStatus.PREEMPTED)  # read first: a log is final once it has ended
    read = runfiles.log_chunk(attempt.log_path, offset=offset)
    if read is None:
        tail = attempt.log_tail if offset == 0 else ""
        return LogChunk(attempt.number, offset, offset + len(tail.encode()), tail, ended)
    return LogChunk(attempt.number, offset, read.next_offset, read.text, ended and read.at_end)


def metric_arrays(run_ids: Iterable[int], name: str) -> dict[int, Series]:
    """``{run_id: (steps, values)}`` of metric ``name``, steps ascending; one query, no model objects."""
    rows = (
        Metric.objects.filter(run_id__in=list(run_ids), name=name)
        .order_by("run_id", "step")
        .values_list("run_id", "step", "value")
    )
    table = np.array(list(rows), dtype=np.float64).reshape(-1, 3)
    if not len(table):
        return {}
    run_column = table[:, 0].astype(np.int64)
    starts = np.flatnonzero(np.diff(run_column, prepend=run_column[0] - 1))
    return {
        int(run_column[start]): (table[start:stop, 1].astype(np.int64), table[start:stop, 2])
        for start, stop in zip(starts, [*starts[1:], len(table)])
    }


def run_metric_arrays(run_id: int) -> dict[str, Series]:
    """``{name: (steps, values)}`` of every metric one run logged, steps ascending; one query."""
    rows = Metric.objects.filter(run_id=run_id).order_by("name", "step").values_list("name", "step", "value")
    names, steps, values = [], [], []
    for name, step, value in rows.iterator(chunk_size=20_000):
        names.append(name)
        steps.append(step)
        values.append(value)
    series: dict[str, Series] = {}
    start = 0
    for index in range(1, len(names) + 1):
        if index == len(names) or names[index] != names[start]:
            series[names[start]] = (np.array(steps[start:index], dtype=np.int64), np.array(values[start:index]))
            start = index
    return series


def final_values(run_ids: Iterable[int], name: str) -> dict[int, float]:
    """``{run_id: value of metric name at the run's last logged step}``, one query (a correlated subquery
    on the (run, name, step) index instead of loading every point)."""
    last_step = Metric.objects.filter(run=OuterRef("run"), name=name).order_by("-step").values("step")[:1]
    rows = Metric.objects.filter(run_id__in=list(run_ids), name=name, step=Subquery(last_step))
    return dict(rows.values_list("run_id", "value"))


def metric_names(run_ids: Iterable[int], prefix: str) -> list[str]:
    """The distinct metric names starting with ``prefix`` (e.g. ``val_loss/``) that any of the runs logged."""
    rows = Metric.objects.filter(run_id__in=list(run_ids), name__startswith=prefix).values_list("name", flat=True)
    return sorted(set(rows.distinct().order_by()))


def final_values_by_name(run_ids: Iterable[int], prefix: str) -> dict[str, dict[int, float]]:
    """Like :func:`final_values` for every metric whose name starts with ``prefix``, in one query:
    ``{name: {run_id: value at the run's last logged step of that metric}}``."""
    last_step = (Metric.objects.filter(run=OuterRef("run"), name=OuterRef("name")).order_by("-step")
                 .values("step")[:1])
    rows = Metric.objects.filter(run_id__in=list(run_ids), name__startswith=prefix, step=Subquery(last_step))
    finals: dict[str, dict[int, float]] = {}
    for run_id, name, value in rows.values_list("run_id", "name", "value"):
        finals.setdefault(name, {})[run_id] = value
    return finals


def per_run_aggregate(run_ids: Iterable[int], name: str, how: str) -> dict[int, float]:
    """``{run_id: mean or max of metric name over its steps}`` (``how`` is "mean" or "max"), one query."""
    function = {"mean": Avg, "max": Max}[how]
    rows = (
        Metric.objects.filter(run_id__in=list(run_ids), name=name)
        .values("run_id")
        .annotate(result=function("value"))
        .values_list("run_id", "result")
        .order_by()
    )
    return {run_id: result for run_id, result in rows}


def studies_with_arms(*, kind: str = "", idea_id: int | None = None, user: User | None = None) -> QuerySet[Study]:
    """Studies, newest first, with baseline, ideas in order, arms with their runs and all runs loaded (what
    the study list and the idea panel need for status and verdict columns); optionally one kind or idea, and
    only those ``user`` may see (None: no visibility check, for reviewers' evidence and jobs)."""
    studies = Study.objects.filter(study_q(user) if user is not None else Q()).select_related("baseline", "created_by").prefetch_related(
        Prefetch("study_ideas", queryset=StudyIdea.objects.select_related("idea").order_by("position")),
        # Status (study runs) before results (arm runs), as in selectors.study_detail.
        Prefetch("runs", queryset=Run.objects.order_by("id").only("id", "status", "study_id")),
        Prefetch("arms", queryset=Arm.objects.order_by("position").prefetch_related(
            Prefetch("runs", queryset=Run.objects.order_by("id").only("id", "seed", "status", "study_id"))
        )),
    )
    if kind:
        studies = studies.filter(kind=kind)
    if idea_id is not None:
        studies = studies.filter(study_ideas__idea_id=idea_id)
    return studies.order_by("-created_at", "-id")


@dataclass(frozen=True)
class MetricSeries:
    name: str
    count: int  # points recorded
    points: list[list[float]]  # [step, value] pairs, downsampled to at most the asked number


def run_metric_series(run: Run, name: str, *, max_points: int | None = None) -> MetricSeries:
    """Metric ``name`` of ``run`` by step, downsampled with LTTB to ``max_points`` when it has more. Raises
    ``ValidationError`` keyed ``name`` when the run has metrics but none called so (no metrics yet: empty)."""
    recorded = sorted(set(Metric.objects.filter(run=run).values_list("name", flat=True)))
    if recorded and name not in recorded:
        raise ValidationError({"name": f"run {run.pk} has no metric {name!r}; it has {', '.join(recorded)}"})
    steps, values = metric_arrays([run.pk], name).get(run.pk, (np.array([], dtype=np.int64), np.array([])))
    count = len(steps)
    if max_points is not None and count > max_points:
        keep = lttb_indices(steps.astype(np.float64), values, max_points)
        steps, values = steps[keep], values[keep]
    return MetricSeries(name, count, [[int(step), float(value)] for step, value in zip(steps, values)])


def corpora_list(*, kind: str = "", origin: str = "") -> list[CorpusInfo]:
    """The registered corpora recipes may name, optionally only one origin ("built-in" / "registered") or those
    whose kind starts with ``kind`` (e.g. "prose"). Every signed-in user may use every registered corpus."""
    return [info for info in corpus_catalogue()
            if info.kind.startswith(kind) and (not origin or info.origin == origin)]
