"""A study's results as the pages and the API show them: final validation loss per arm and seed, the
difference of every arm to the baseline, leave-one-out marginals, the verdict and its warnings.

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


@dataclass(frozen=True)
class StudyResults:
    arms: list[ArmResult]
    verdict: list[str]
    warnings: list[str]
    marginals: list[Marginal] = field(default_factory=list)

    @property
    def marginal_lines(self) -> list[str]:
        return [analysis.marginal_text(marginal, FINAL_METRIC_LABEL) for marginal in self.marginals]

    @property
    def has_values(self) -> bool:
        return any(arm.values for arm in self.arms)


def _warnings(study: Study, arms: list[ArmResult]) -> list[str]:
    baseline = next((arm for arm in arms if arm.kind == "baseline"), None)
    judged = [arm for arm in arms if arm.kind == "all" or (arm.kind == "single" and study.kind == Study.Kind.ABLATION)]
    warnings = []
    for arm in judged:
        for warning in analysis.warnings_for(arm.vs_baseline, baseline.stats if baseline else None):
            warnings.append(f"{arm.name}: {warning}" if len(judged) > 1 else warning)
    return warnings


def results_for(studies: Iterable[Study]) -> dict[int, StudyResults]:
    """Results of studies whose arms and runs are prefetched (``selectors.studies_with_arms`` or
    ``selectors.study_detail``), with one query for all their final values."""
    studies = list(studies)
    finished = [
        run.pk for study in studies for arm in study.arms.all() for run in arm.runs.all()
        if run.status == RunStatus.SUCCEEDED
    ]
    finals = selectors.final_values(finished, FINAL_METRIC) if finished else {}
    results = {}
    for study in studies:
        arms = analysis.arm_results([
            (arm.name, arm.kind, arm.idea_keys, {run.seed: finals[run.pk] for run in arm.runs.all() if run.pk in finals})
            for arm in study.arms.all()
        ])
        results[study.pk] = StudyResults(
            arms=arms,
            verdict=analysis.study_verdict(study.kind, arms, FINAL_METRIC_LABEL) if any(a.values for a in arms) else [],
            warnings=_warnings(study, arms),
            marginals=analysis.leave_one_out_marginals(arms),
        )
    return results


def study_results(study: Study) -> StudyResults:
    return results_for([study])[study.pk]


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
