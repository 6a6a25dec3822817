"""A study's results as the pages and the API show them: final validation loss per arm and seed, the
difference of every arm to the baseline, leave-one-out marginals, the verdict and its warnings. The same
analysis runs on any other loss-like metric (lower is better), e.g. one corpus's ``val_loss/python-docs``.

Only succeeded runs count: a running run's latest validation loss is not its final one.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from experiments import analysis, selectors
from experiments.analysis import ArmResult, Marginal
from experiments.models import RunStatus, Study

FINAL_METRIC = "val_loss"
FINAL_METRIC_LABEL = "val loss"
PER_CORPUS_PREFIX = "val_loss/"  # the trainer's validation loss on each corpus of a blend


@dataclass(frozen=True)
class StudyResults:
    arms: list[ArmResult]
    verdict: list[str]
    warnings: list[str]
    marginals: list[Marginal] = field(default_factory=list)
    metric: str = FINAL_METRIC

    @property
    def metric_label(self) -> str:
        return FINAL_METRIC_LABEL if self.metric == FINAL_METRIC else self.metric

    @property
    def marginal_lines(self) -> list[str]:
        return [analysis.marginal_text(marginal, self.metric_label) for marginal in self.marginals]

    @property
    def has_values(self) -> bool:
        return any(arm.values for arm in self.arms)


def _warnings(study: Study, arms: list[ArmResult]) -> list[str]:
    baseline = next((arm for arm in arms if arm.kind == "baseline"), None)
    judged = [arm for arm in arms if arm.kind == "all" or (arm.kind == "single" and study.kind == Study.Kind.ABLATION)]
    warnings = []
    for arm in judged:
        if arm.same_runs_as:
            continue  # the verdict already says there is nothing to measure
        for warning in analysis.warnings_for(arm.vs_baseline, baseline.stats if baseline else None):
            warnings.append(f"{arm.name}: {warning}" if len(judged) > 1 else warning)
    return warnings


def _finished(studies: Iterable[Study]) -> list[int]:
    return [run.pk for study in studies for arm in study.arms.all() for run in arm.runs.all()
            if run.status == RunStatus.SUCCEEDED]


def _result(study: Study, metric: str, finals: dict[int, float]) -> StudyResults:
    arms = analysis.arm_results([
        (arm.name, arm.kind, arm.idea_keys, {run.seed: finals[run.pk] for run in arm.runs.all() if run.pk in finals})
        for arm in study.arms.all()
    ], run_sets={arm.name: frozenset(run.pk for run in arm.runs.all()) for arm in study.arms.all()})
    result = StudyResults(arms=arms, verdict=[], warnings=_warnings(study, arms),
                          marginals=analysis.leave_one_out_marginals(arms), metric=metric)
    if any(a.values for a in arms):
        result.verdict.extend(analysis.study_verdict(study.kind, arms, result.metric_label))
    return result


def results_for(studies: Iterable[Study], metric: str = FINAL_METRIC) -> dict[int, StudyResults]:
    """Results on ``metric`` of studies whose arms and runs are prefetched (``selectors.studies_with_arms`` or
    ``selectors.study_detail``), with one query for all their final values."""
    studies = list(studies)
    finished = _finished(studies)
    finals = selectors.final_values(finished, metric) if finished else {}
    return {study.pk: _result(study, metric, finals) for study in studies}


def study_results(study: Study, metric: str = FINAL_METRIC) -> StudyResults:
    return results_for([study], metric)[study.pk]


def per_corpus_metrics(names: Iterable[str]) -> list[str]:
    """The ``val_loss/<corpus>`` among metric ``names``; none when only one corpus was evaluated, whose
    validation loss is ``val_loss`` itself."""
    per_corpus = sorted(name for name in names if name.startswith(PER_CORPUS_PREFIX))
    return per_corpus if len(per_corpus) > 1 else []


def study_results_with_corpora(study: Study) -> tuple[StudyResults, list[StudyResults]]:
    """The study's results on ``val_loss`` and on each corpus's ``val_loss/<corpus>``, from one query."""
    finished = _finished([study])
    finals = selectors.final_values_by_name(finished, FINAL_METRIC) if finished else {}
    per_corpus = [_result(study, name, finals[name]) for name in per_corpus_metrics(finals)]
    return _result(study, FINAL_METRIC, finals.get(FINAL_METRIC, {})), per_corpus


@dataclass(frozen=True)
class StudyRow:
    study: Study
    status: str
    results: StudyResults


def study_rows(studies: Iterable[Study]) -> list[StudyRow]:
    """Studies from ``selectors.studies_with_arms`` with their status and verdict (one extra query)."""
    studies = list(studies)
    results = results_for(studies)
    return [StudyRow(study, selectors.study_status(study.runs.all()), results[study.pk]) for study in studies]
