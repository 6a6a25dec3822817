"""User-facing writes: baselines, study launches, cancel and resume. One transaction each; start
messages leave only after commit. Errors: see ``experiments.errors``."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from experiments import budget, configdiff
from experiments.composition import ConflictError
from experiments.errors import RunStateConflict
from experiments.execution import attempts
from experiments.models import LIVE_STATES, Arm, Attempt, Backend, Baseline, Run, RunStatus, RunTag, Study, StudyIdea
from experiments.permissions import can_launch_study, can_manage_study
from experiments.planning import StudyPlan, plan_study
from ideas import services as idea_services
from ideas.lifecycle import Status
from ideas.models import Idea
from modelzoo.config import ConfigError, apply_overrides, load_recipe


@transaction.atomic
def baseline_save(
    *,
    name: str,
    recipe: str,
    overrides: Mapping[str, Any] | None = None,
    backend: str = Backend.LOCAL,
    description: str = "",
    user: AbstractBaseUser | None = None,
) -> Baseline:
    """Save ``name`` as its next version. Saving exactly the latest content again returns that version
    instead of adding an identical one. The recipe and overrides are checked with modelzoo."""
    overrides = dict(overrides or {})
    if backend not in Backend.values:
        raise ValidationError({"backend": f"backend must be one of {', '.join(Backend.values)}, got {backend!r}"})
    try:
        apply_overrides(load_recipe(recipe), overrides)
    except ConfigError as error:
        raise ValidationError({"overrides" if overrides else "recipe": str(error)}) from None
    latest = Baseline.objects.select_for_update().filter(name=name).order_by("-version").first()
    if latest and (latest.recipe, latest.overrides, latest.backend) == (recipe, overrides, backend):
        return latest
    baseline = Baseline(
        name=name,
        version=(latest.version + 1) if latest else 1,
        recipe=recipe,
        overrides=overrides,
        backend=backend,
        description=description,
        created_by=user,
    )
    baseline.full_clean()
    baseline.save()
    return baseline


def _default_title(plan: StudyPlan) -> str:
    keys = ", ".join(idea.key for idea in plan.ideas)
    return f"{plan.kind.capitalize()} of {keys} on {plan.baseline.label}"


@transaction.atomic
def study_launch(
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
    title: str = "",
    override: bool = False,
    override_reason: str = "",
) -> Study:
    """Create the study, its arms, runs (one per distinct config) and first attempts, then queue them.

    ``baseline`` is ``"name"`` (latest version) or ``"name@N"``; ``ideas`` are keys in composition order.
    Raises ValidationError (bad field), ConflictError (unresolved conflicts), PermissionDenied,
    ``budget.BudgetRefused`` (the estimate exceeds the grant; ``override`` by a reviewer launches anyway).
    """
    plan = plan_study(
        user=user,
        kind=kind,
        baseline=baseline,
        ideas=ideas,
        seeds=seeds,
        max_steps=max_steps,
        leave_one_out=leave_one_out,
        resolutions=resolutions,
        backend=backend,
    )
    if not can_launch_study(user, plan.ideas):
        raise PermissionDenied("only the PIC and launchers of every idea's area (or staff) may launch this study; "
                               "a volunteer becomes a launcher when the PIC allows it on the area page")
    if plan.conflicts:
        raise ConflictError(plan.conflicts)
    study = Study.objects.create(
        title=title.strip()[:200] or _default_title(plan),
        kind=plan.kind,
        baseline=plan.baseline,
        seeds=plan.seeds,
        max_steps=plan.max_steps,
        leave_one_out=plan.leave_one_out,
        resolutions=plan.resolutions,
        backend=plan.backend,
        created_by=user,
    )
    budget.study_authorize(study=study, plan=plan, user=user, override=override, override_reason=override_reason)
    StudyIdea.objects.bulk_create(
        StudyIdea(study=study, idea=idea, position=index, patch=idea.recipe_patch)
        for index, idea in enumerate(plan.ideas)
    )
    arms = {
        spec.name: Arm.objects.create(
            study=study, name=spec.name, kind=spec.kind, position=index, idea_keys=list(spec.idea_keys), patch=spec.patch
        )
        for index, spec in enumerate(plan.arms)
    }
    for planned in plan.runs:
        run = Run.objects.create(
            study=study,
            seed=planned.seed,
            recipe=plan.baseline.recipe,
            overrides=planned.overrides,
            config=planned.config,
            config_hash=planned.config_hash,
            config_flat=configdiff.flatten(planned.config),
            backend=plan.backend,
            wandb_tags=list(planned.idea_keys),
            max_steps=plan.max_steps,
        )
        for arm_name in planned.arm_names:
            arms[arm_name].runs.add(run)
        attempts.attempt_create(run=run)
    _ideas_advance(study, plan.ideas, user)
    return study


# The lifecycle status a study's ideas reach when it launches.
_STUDY_STATUS = {Study.Kind.ABLATION: Status.IN_ABLATION, Study.Kind.INTEGRATION: Status.IN_INTEGRATION}


def _ideas_advance(study: Study, ideas: Sequence[Idea], user: AbstractBaseUser) -> None:
    """Move the study's ideas along their lifecycle (a submitted idea being ablated is in ablation now), each
    step recorded with the study as the reason, so the idea's timeline and the area board show it. The note
    names the study but not its title: a study may mix in ideas of a restricted area, and the idea's readers
    may not be allowed to see it (its page tells them, or answers 404)."""
    reason = f"{study.label} launched ({study.get_absolute_url()})"
    for idea in ideas:
        idea_services.idea_advance(idea=idea, to_status=_STUDY_STATUS[study.kind], by=user, reason=reason)


def _run_for_update(run: Run | int) -> Run:
    return Run.objects.select_for_update().select_related("study").get(pk=getattr(run, "pk", run))


@transaction.atomic
def run_cancel(*, run: Run | int, user: AbstractBaseUser) -> Run:
    """Cancel a run: a queued attempt is cancelled at once; a starting/running one is asked to stop
    (its worker sends SIGTERM to the trainer's process group, SIGKILL after the grace period).
    Raises RunStateConflict if the run is not live, or if its trainer has already succeeded (it stays succeeded)."""
    run = _run_for_update(run)
    if not can_manage_study(user, run.study):
        raise PermissionDenied("only whoever launched the study, or the ideas' PICs and launchers, may cancel it")
    outcome = attempts.attempt_cancel(run=run, by=user)
    if outcome is attempts.CancelOutcome.NOT_LIVE:
        raise RunStateConflict(run.public_id, run.status, "cancel")
    if outcome is attempts.CancelOutcome.TRAINER_SUCCEEDED:
        raise RunStateConflict(
            run.public_id, RunStatus.SUCCEEDED, "cancel",
            detail="its trainer had already finished training; the run stays succeeded and keeps its result",
        )
    run.refresh_from_db()
    return run


@transaction.atomic
def run_resume(*, run: Run | int, user: AbstractBaseUser) -> Attempt:
    """Queue a new attempt of a failed, cancelled or preempted run; it resumes from the last checkpoint.
    Raises RunStateConflict if the run is live or already succeeded."""
    run = _run_for_update(run)
    if not can_manage_study(user, run.study):
        raise PermissionDenied("only whoever launched the study, or the ideas' PICs and launchers, may resume it")
    if run.status in (*LIVE_STATES, RunStatus.SUCCEEDED):
        raise RunStateConflict(run.public_id, run.status, "resume")
    return attempts.attempt_create(run=run)


MAX_TAGS = 20
MAX_NOTES = 20_000
_TAG = re.compile(r"^[-\w]{1,40}$")


@transaction.atomic
def run_annotate(*, run: Run | int, user: AbstractBaseUser, notes: str, tags: Sequence[str]) -> Run:
    """Replace a run's notes and tags. Whoever may manage its study (its launcher, the ideas' PICs and
    volunteers, staff) may; ValidationError names ``tags`` or ``notes`` when they are malformed."""
    run = _run_for_update(run)
    if not can_manage_study(user, run.study):
        raise PermissionDenied("only whoever launched the study, or the ideas' PICs and volunteers, may edit its runs")
    names = list(dict.fromkeys(tag.strip().lower() for tag in tags if tag.strip()))
    if bad := [name for name in names if not _TAG.match(name)]:
        raise ValidationError({"tags": f"tag {bad[0]!r}: tags are up to 40 letters, digits, '-' or '_'"})
    if len(names) > MAX_TAGS:
        raise ValidationError({"tags": f"a run takes at most {MAX_TAGS} tags, got {len(names)}"})
    if len(notes) > MAX_NOTES:
        raise ValidationError({"notes": f"notes take at most {MAX_NOTES} characters, got {len(notes)}"})
    Run.objects.filter(pk=run.pk).update(notes=notes)
    RunTag.objects.filter(run=run).exclude(name__in=names).delete()
    RunTag.objects.bulk_create([RunTag(run=run, name=name) for name in names], ignore_conflicts=True)
    run.refresh_from_db()
    return run


def study_cancel(*, study: Study, user: AbstractBaseUser) -> int:
    """Cancel every live run of a study; returns how many were live."""
    live = study.runs.filter(status__in=LIVE_STATES)
    count = 0
    for run_id in live.values_list("pk", flat=True):
        try:
            run_cancel(run=run_id, user=user)
        except RunStateConflict:
            continue  # finished between the listing and the cancel
        count += 1
    return count

