"""Reads for the result pages that ``experiments.selectors`` does not offer: whole metric series as numpy
arrays (the study page loads hundreds of thousands of points), per-run aggregates and an idea's studies."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from django.db.models import Avg, Max, OuterRef, Prefetch, Q, QuerySet, Subquery

from experiments.models import Arm, Metric, Run, Study, StudyIdea
from experiments.visibility import study_q
from ideas.visibility import User

Series = tuple[np.ndarray, np.ndarray]


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


def metric_names(run_ids: Iterable[int], prefix: str) -> list[str]:
    """The distinct metric names starting with ``prefix`` (e.g. ``val_loss/``) that any of the runs logged."""
    rows = Metric.objects.filter(run_id__in=list(run_ids), name__startswith=prefix).values_list("name", flat=True)
    return sorted(set(rows.distinct().order_by()))


def final_values(run_ids: Iterable[int], name: str) -> dict[int, float]:
    """``{run_id: value of metric name at the run's last logged step}``, one query (a correlated subquery
    on the (run, name, step) index instead of loading every point)."""
    last_step = Metric.objects.filter(run=OuterRef("run"), name=name).order_by("-step").values("step")[:1]
    rows = Metric.objects.filter(run_id__in=list(run_ids), name=name, step=Subquery(last_step))
    return dict(rows.values_list("run_id", "value"))


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
