"""A study launch, planned but not made: the preview that the new-study page and ``POST
/api/v1/studies/preview/`` show before anything is created — arms, composed patches, conflicts, identical
configs merged into one run, the GPU-hour estimate, whether the grant covers it and whether this user may
launch it. Reads only: nothing is reserved, created or queued."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from compute.permissions import can_override_launch
from compute.services import LaunchDecision
from experiments import budget
from experiments.models import Baseline
from experiments.permissions import can_launch_study
from experiments.planning import StudyPlan, plan_study


@dataclass(frozen=True)
class StudyPreview:
    plan: StudyPlan
    budget: LaunchDecision | None  # None: no compute pool is defined, launches are not budgeted
    can_launch: bool
    problems: list[str] = field(default_factory=list)  # why a launch with these arguments would be refused

    @property
    def launchable(self) -> bool:
        return not self.problems

    @property
    def merged_runs(self) -> list[dict[str, Any]]:
        """Arms that train an identical config share one run per seed; each group once, with its seeds."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for run in self.plan.runs:
            if len(run.arm_names) > 1:
                groups.setdefault(run.arm_names, []).append(run.seed)
        return [{"arms": list(arms), "seeds": seeds} for arms, seeds in groups.items()]


def study_preview(
    *,
    user: AbstractBaseUser,
    kind: str,
    baseline: str | Baseline,
    ideas: Sequence[str],
    seeds: Sequence[int],
    max_steps: int,
    leave_one_out: bool = False,
    resolutions: Mapping[str, Any] | None = None,
    backend: str | None = None,
    override: bool = False,
) -> StudyPreview:
    """Plan the study as ``study_launch`` would and say what launching it would meet. Raises ValidationError
    for bad input, exactly as the launch does; an idea the user may not see reads as an unknown key (its
    patch is not shown)."""
    # plan_study looks ideas up among those the user may see, before any other check.
    plan = plan_study(user=user, kind=kind, baseline=baseline, ideas=ideas, seeds=seeds, max_steps=max_steps,
                      leave_one_out=leave_one_out, resolutions=resolutions, backend=backend)
    problems = []
    can_launch = can_launch_study(user, plan.ideas)
    if not can_launch:
        problems.append("only the PIC and launchers of every idea's area (or staff) may launch this study")
    if plan.conflicts:
        keys = ", ".join(conflict.key for conflict in plan.conflicts)
        problems.append(f"ideas set {keys} to different values: choose one value for each (resolutions)")
        decision = None
    else:
        decision = budget.study_budget_check(plan)
        if decision is not None and not decision.allowed:
            if not override:
                problems.append(decision.message)
            elif not can_override_launch(user):
                problems.append("only reviewers may launch over a grant's budget")
    return StudyPreview(plan=plan, budget=decision, can_launch=can_launch, problems=problems)
