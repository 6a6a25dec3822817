"""Turning a study request into arms and fully resolved run configs, without writing anything.

``plan_study`` is what the "new study" page previews (composed patch, conflicts, estimated GPU-hours)
and what ``services.study_launch`` persists. Bad input raises django ``ValidationError`` keyed by field;
conflicts are *returned* (``plan.conflicts``) so they can be shown, and ``study_launch`` refuses them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Avg, QuerySet

from compute.services import launch_estimate_from_throughput
from core.types import User
from experiments import composition, configdiff
from experiments.baseline_checks import no_effect_reasons
from experiments.composition import ArmSpec, Conflict, IdeaPatch
from experiments.execution.backends import backend_for
from experiments.models import Backend, Baseline, Run, RunStatus, Study
from ideas.models import Idea
from ideas.patches import validate_recipe_patch
from ideas.visibility import visible_ideas
from modelzoo.config import (ConfigError, Recipe, apply_overrides, load_recipe, merge_overrides,
                             model_config_from_dict, validate_patch)
from modelzoo.sizing import parameter_count, tokens_per_step

MAX_SEED = 2**31 - 1
MAX_SEEDS = 16
MAX_STEPS = 1_000_000
MAX_IDEAS = 16
_BASELINE_REF = re.compile(r"^(?P<name>[-\w]+)(?:@(?P<version>\d+))?$")


@dataclass(frozen=True)
class PlannedRun:
    """One run to create: a seed, the trainer's ``--set`` overrides and the resolved config."""

    seed: int
    overrides: dict[str, Any]
    config: dict[str, Any]
    config_hash: str
    arm_names: tuple[str, ...]
    idea_keys: tuple[str, ...]


@dataclass
class StudyPlan:
    kind: str
    baseline: Baseline
    ideas: list[Idea]
    patches: list[IdeaPatch]
    seeds: list[int]
    max_steps: int
    leave_one_out: bool
    resolutions: dict[str, Any]
    backend: str
    conflicts: list[Conflict] = field(default_factory=list)
    arms: list[ArmSpec] = field(default_factory=list)
    runs: list[PlannedRun] = field(default_factory=list)
    tokens_per_run: int = 0
    # The one GPU-hour estimate: the preview shows it and the budget reserves it. None: no measured throughput.
    estimated_gpu_hours: Decimal | None = None

    @property
    def composed_patch(self) -> dict[str, Any]:
        """The 'all ideas' patch (for integration) with conflicting keys showing the first idea's value
        unless resolved; for display next to the conflicts."""
        merged: dict[str, Any] = {}
        for patch in self.patches:
            for key, value in patch.patch.items():
                merged.setdefault(key, value)
        merged.update({key: value for key, value in self.resolutions.items() if key in merged})
        return merged


@dataclass(frozen=True)
class NoOp:
    """A treatment arm whose ideas leave the baseline's resolved config effectively unchanged, and why."""

    arm: str
    idea_keys: tuple[str, ...]
    baseline: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        ideas = " + ".join(self.idea_keys)
        return f"{ideas} changes nothing against {self.baseline}: {'; '.join(self.reasons)}"


def find_no_ops(baseline: Baseline, arms: list[ArmSpec], runs: list[PlannedRun], kind: str) -> list[NoOp]:
    """The arms that would train what the baseline trains: every key their patch sets either already has that
    value in the baseline or sits in a part of the config that is off (``modelzoo.config_effects``). Checked
    for each idea's arm of an ablation and for the all-ideas arm of an integration study."""
    reference = next(configdiff.flatten(run.config) for run in runs if "baseline" in run.arm_names)
    judged = "single" if kind == Study.Kind.ABLATION else "all"
    no_ops = []
    for arm in arms:
        if arm.kind == judged and (reasons := no_effect_reasons(arm.patch, reference)) is not None:
            no_ops.append(NoOp(arm.name, arm.idea_keys, baseline.label, tuple(reasons)))
    return no_ops


def resolve_baseline(ref: str | Baseline) -> Baseline:
    """``name`` (latest version) or ``name@N`` → Baseline; ValidationError on ``baseline`` otherwise."""
    if isinstance(ref, Baseline):
        return ref
    match = _BASELINE_REF.match(ref or "") if isinstance(ref, str) else None
    if match is None:
        raise ValidationError({"baseline": f"baseline must look like 'name' or 'name@version', got {ref!r}"})
    versions = Baseline.objects.filter(name=match["name"])
    if match["version"]:
        versions = versions.filter(version=int(match["version"]))
    baseline = versions.order_by("-version").first()
    if baseline is None:
        known = ", ".join(sorted(set(Baseline.objects.values_list("name", flat=True)))) or "none"
        raise ValidationError({"baseline": f"unknown baseline {ref!r} (known: {known})"})
    return baseline


def baseline_config(baseline: Baseline) -> dict[str, Any]:
    """The baseline's recipe with its overrides applied: the config its runs start from (before ideas and seed)."""
    try:
        return apply_overrides(load_recipe(baseline.recipe), baseline.overrides).to_dict()
    except ConfigError as error:
        raise ValidationError({"baseline": f"{baseline.label}: {error}"}) from None


def _checked_ideas(kind: str, keys: Any, visible: QuerySet[Idea]) -> list[Idea]:
    if not isinstance(keys, (list, tuple)) or not all(isinstance(key, str) for key in keys):
        raise ValidationError({"ideas": "ideas must be a list of idea keys such as 'IDEA-0042'"})
    minimum = 2 if kind == Study.Kind.INTEGRATION else 1
    if not minimum <= len(keys) <= MAX_IDEAS:
        raise ValidationError({"ideas": f"a {kind} study needs {minimum} to {MAX_IDEAS} ideas, got {len(keys)}"})
    duplicates = sorted({key for key in keys if list(keys).count(key) > 1})
    if duplicates:
        raise ValidationError({"ideas": f"idea {duplicates[0]} is listed twice"})
    found = {idea.key: idea for idea in visible.filter(key__in=keys).select_related("area")}
    unknown = [key for key in keys if key not in found]
    if unknown:
        noun = "idea key" if len(unknown) == 1 else "idea keys"
        raise ValidationError({"ideas": f"unknown {noun} {', '.join(unknown)}"})
    return [found[key] for key in keys]


def _field_errors(kind: Any, seeds: Any, max_steps: Any, leave_one_out: Any, backend: Any) -> dict[str, str]:
    errors: dict[str, str] = {}
    if kind not in Study.Kind.values:
        errors["kind"] = f"kind must be one of {', '.join(Study.Kind.values)}, got {kind!r}"
    if not isinstance(seeds, (list, tuple)) or not 1 <= len(seeds) <= MAX_SEEDS:
        errors["seeds"] = f"seeds must be a list of 1 to {MAX_SEEDS} integers"
    elif bad := [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED]:
        errors["seeds"] = f"seed {bad[0]!r} is out of range: seeds are integers from 0 to {MAX_SEED}"
    elif len(set(seeds)) != len(seeds):
        errors["seeds"] = "seeds must be distinct"
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 1 <= max_steps <= MAX_STEPS:
        errors["max_steps"] = f"max_steps must be an integer from 1 to {MAX_STEPS}, got {max_steps!r}"
    if not isinstance(leave_one_out, bool):
        errors["leave_one_out"] = f"leave_one_out must be true or false, got {leave_one_out!r}"
    elif leave_one_out and kind == Study.Kind.ABLATION:
        errors["leave_one_out"] = "leave-one-out arms exist only in integration studies"
    if backend is not None and backend not in Backend.values:
        errors["backend"] = f"backend must be one of {', '.join(Backend.values)}, got {backend!r}"
    return errors


def _patch_errors(ideas: list[Idea]) -> list[str]:
    errors = [f"{idea.key}: {message}" for idea in ideas for message in validate_recipe_patch(idea.recipe_patch)]
    return errors + composition.controlled_key_errors([IdeaPatch(idea.key, idea.recipe_patch) for idea in ideas])


def _resolution_errors(patches: list[IdeaPatch], resolutions: Any) -> list[str]:
    if not isinstance(resolutions, Mapping):
        return ["resolutions must be an object of dotted key -> chosen value"]
    errors = composition.resolution_errors(patches, resolutions)
    return errors or [f"resolutions: {message}" for message in validate_patch(dict(resolutions))]


def measured_tokens_per_s(baseline: Baseline) -> float | None:
    """Mean throughput of finished runs on this baseline's recipe, the basis of GPU-hour forecasts."""
    runs = Run.objects.filter(recipe=baseline.recipe, status=RunStatus.SUCCEEDED, tokens_per_s__gt=0)
    return runs.aggregate(mean=Avg("tokens_per_s"))["mean"]


def plan_study(
    *,
    user: User,
    kind: str,
    baseline: str | Baseline,
    ideas: Sequence[str],
    seeds: Sequence[int],
    max_steps: int,
    leave_one_out: bool = False,
    resolutions: Mapping[str, Any] | None = None,
    backend: str | None = None,
) -> StudyPlan:
    """Validate a study request by ``user`` and derive its arms and runs (one per distinct config).

    Ideas ``user`` may not see are looked up as if they did not exist, before anything reads their patches,
    so no answer (unknown key, permission, conflict message) tells a hidden idea from a missing one."""
    errors = _field_errors(kind, seeds, max_steps, leave_one_out, backend)
    if errors:
        raise ValidationError(errors)
    resolved_baseline = resolve_baseline(baseline)
    idea_rows = _checked_ideas(kind, ideas, visible_ideas(user))
    patches = [IdeaPatch(idea.key, dict(idea.recipe_patch)) for idea in idea_rows]
    resolutions = dict(resolutions or {})
    if patch_errors := _patch_errors(idea_rows):
        raise ValidationError({"ideas": patch_errors})
    if resolution_errors := _resolution_errors(patches, resolutions):
        raise ValidationError({"resolutions": resolution_errors})

    plan = StudyPlan(
        kind=kind,
        baseline=resolved_baseline,
        ideas=idea_rows,
        patches=patches,
        seeds=list(seeds),
        max_steps=max_steps,
        leave_one_out=leave_one_out,
        resolutions=resolutions,
        backend=backend or resolved_baseline.backend,
    )
    if kind == Study.Kind.INTEGRATION:
        plan.conflicts = [c for c in composition.find_conflicts(patches) if c.key not in resolutions]
        if plan.conflicts:
            return plan
    plan.arms = composition.derive_arms(kind, patches, leave_one_out=leave_one_out, resolutions=resolutions)
    plan.runs = _planned_runs(resolved_baseline, plan.arms, plan.seeds, max_steps)
    if no_ops := find_no_ops(resolved_baseline, plan.arms, plan.runs, kind):
        raise ValidationError({"ideas": [str(no_op) for no_op in no_ops]})
    plan.tokens_per_run = max(_tokens(run.config) for run in plan.runs)
    plan.estimated_gpu_hours = _estimate_gpu_hours(plan)
    return plan


def _tokens(config: dict[str, Any]) -> int:
    """Tokens one run trains on: steps × batch × sequence, from its own resolved config."""
    train = config["train"]
    return train["max_steps"] * train["batch_size"] * train["seq_len"]


def _estimate_gpu_hours(plan: StudyPlan) -> Decimal | None:
    """Each run from its own resolved config: its tokens, at the baseline's measured throughput scaled by
    parameters (a step costs ~6 × parameters × tokens), times the devices each run holds on its backend."""
    throughput = measured_tokens_per_s(plan.baseline)
    if not throughput or not plan.runs:
        return None
    baseline_parameters = parameter_count(apply_overrides(load_recipe(plan.baseline.recipe),
                                                          plan.baseline.overrides).model)
    baseline_equivalent_tokens = sum(
        _tokens(run.config) * parameter_count(model_config_from_dict(run.config["model"])) / baseline_parameters
        for run in plan.runs
    )
    return launch_estimate_from_throughput(gpus=backend_for(plan.backend).devices(),
                                           tokens=round(baseline_equivalent_tokens), tokens_per_second=throughput)


def _size_errors(recipe: Recipe) -> list[str]:
    """What a worker could not hold, with the limit (settings FLIGHTDECK_MAX_RUN_PARAMETERS / _TOKENS_PER_STEP)."""
    errors = []
    step_tokens, most_tokens = tokens_per_step(recipe), settings.FLIGHTDECK_MAX_TOKENS_PER_STEP
    if step_tokens > most_tokens:
        errors.append(f"train.batch_size × train.seq_len = {step_tokens} tokens per step; a worker holds at most "
                      f"{most_tokens}")
    parameters, most_parameters = parameter_count(recipe.model), settings.FLIGHTDECK_MAX_RUN_PARAMETERS
    if parameters > most_parameters:
        errors.append(f"the model has about {parameters} parameters; a worker holds at most {most_parameters}")
    return errors


def _planned_runs(baseline: Baseline, arms: list[ArmSpec], seeds: list[int], max_steps: int) -> list[PlannedRun]:
    """Resolve every arm × seed with modelzoo; identical configs collapse into one run shared by arms."""
    try:
        recipe = load_recipe(baseline.recipe)
    except ConfigError as error:
        raise ValidationError({"baseline": f"{baseline.label}: {error}"}) from None
    by_hash: dict[str, PlannedRun] = {}
    errors: list[str] = []
    for arm in arms:
        for seed in seeds:
            overrides = merge_overrides(baseline.overrides, arm.patch, {"train.seed": seed, "train.max_steps": max_steps})
            try:
                resolved = apply_overrides(recipe, overrides)
            except ConfigError as error:
                errors.append(f"arm {arm.name}: {error}")
                break
            if too_big := _size_errors(resolved):
                errors += [f"arm {arm.name}: {message}" for message in too_big]
                break
            digest = resolved.config_hash()
            if digest in by_hash:
                known = by_hash[digest]
                by_hash[digest] = PlannedRun(
                    known.seed, known.overrides, known.config, digest, (*known.arm_names, arm.name), known.idea_keys
                )
            else:
                by_hash[digest] = PlannedRun(seed, overrides, resolved.to_dict(), digest, (arm.name,), arm.idea_keys)
    if errors:
        raise ValidationError({"ideas": errors})
    return list(by_hash.values())
