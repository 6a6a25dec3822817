"""Server-rendered experiment pages (htmx polls the live parts). Each view parses, calls one service or
selector, and renders; studies and runs are fetched through ``_study`` / ``_run`` (404 for unknown or hidden ids).
Anyone signed in may look, except at restricted areas' work (``experiments.visibility``); the services
decide who may launch, cancel and resume."""
from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core import idempotency
from core.forms import apply_service_error
from core.idempotency import IdempotencyKeyReused
from experiments import charts, configdiff, preview, progress, run_charts, selectors, services
from experiments.budget import BudgetRefused
from experiments.composition import ConflictError
from experiments.errors import RunStateConflict
from experiments.execution import runfiles
from experiments.forms import AblationForm, IntegrationForm, RunAnnotateForm
from experiments.models import LIVE_STATES, Run, RunStatus, Study
from experiments.permissions import can_manage_study, launchable_area_ids
from experiments.results import study_results_with_corpora, study_rows
from ideas import selectors as idea_selectors
from ideas.lifecycle import OPEN_STATES, Status
from ideas.models import Idea
from ideas.visibility import visible_ideas

STUDIES_PER_PAGE = 25


def _study(request: HttpRequest, study_id: int, selector: Callable[..., Study] = selectors.study_detail) -> Study:
    """The study as the user may see it: 404 also when hidden (restricted area), never revealing it exists.
    ``selector``: how much of it to load (the polled fragments need less than the page)."""
    return selector(study_id, user=request.user)


def _run(request: HttpRequest, run_id: int, selector: Callable[..., Run] = selectors.run_detail) -> Run:
    return selector(run_id, user=request.user)


# ------------------------------------------------------------------------------------------- study list


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    kind = kind if kind in Study.Kind.values else ""
    page = Paginator(selectors.studies_with_arms(kind=kind, user=request.user), STUDIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "rows": study_rows(list(page.object_list)), "kind": kind, "kinds": Study.Kind.choices}
    return render(request, "experiments/study_list.html", context)


# ------------------------------------------------------------------------------------------- study page


def _grid(study: Study) -> list[tuple[object, list[Run | None]]]:
    """Arms × seeds: each arm with its run per study seed (None where it has none)."""
    rows = []
    for arm in study.arms.all():
        by_seed = {run.seed: run for run in arm.runs.all()}
        rows.append((arm, [by_seed.get(seed) for seed in study.seeds]))
    return rows


def _progress_context(study: Study) -> dict:
    runs = list(study.runs.all())
    status = selectors.study_status(runs)
    return {"study": study, "status": status, "live": status in LIVE_STATES,
            "grid": _grid(study), "progress": progress.study_progress(runs)}


def _smoothing(request: HttpRequest) -> float:
    try:
        value = float(request.GET.get("smooth", "0"))
    except ValueError:
        return 0.0
    return value if value in charts.SMOOTHING_CHOICES else 0.0


def _results_context(request: HttpRequest, study: Study, live: bool) -> dict:
    results, corpus_results = study_results_with_corpora(study)
    smoothing = _smoothing(request)
    return {"study": study, "results": results, "corpus_results": corpus_results, "live": live,
            "smoothing": smoothing,
            "smoothing_choices": charts.SMOOTHING_CHOICES,
            "charts": charts.cached_study_charts(study, results.arms, smoothing=smoothing)}


@login_required
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    context = _progress_context(study)
    context.update(_results_context(request, study, context["live"]))
    context.update(ideas=[member.idea for member in study.study_ideas.all()],
                   can_manage=can_manage_study(request.user, study), has_charts=True)
    return render(request, "experiments/study_detail.html", context)


@login_required
def study_progress(request: HttpRequest, study_id: int) -> HttpResponse:
    """The arms × seeds grid, polled by the study page while runs are live."""
    study = _study(request, study_id, selectors.study_for_polls)
    return render(request, "experiments/_study_progress.html", _progress_context(study))


@login_required
def study_results_fragment(request: HttpRequest, study_id: int) -> HttpResponse:
    """Verdict, marginals and charts; polled while live, and re-requested when the smoothing changes."""
    study = _study(request, study_id, selectors.study_for_polls)
    live = selectors.study_status(study.runs.all()) in LIVE_STATES
    return render(request, "experiments/_study_results.html", _results_context(request, study, live))


@login_required
@require_POST
def study_cancel(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    count = services.study_cancel(study=study, user=request.user)
    messages.info(request, f"Cancelling {count} live run{'s' if count != 1 else ''} of {study.label}.")
    return redirect("experiments:study_detail", study.pk)


# -------------------------------------------------------------------------------------------- launching


def _launch(request: HttpRequest, form, arguments: dict) -> Study | None:
    """Launch a study from a valid ``form``, once per its one-time token (a repeated POST gets the first
    study); service errors land on the form. None when refused."""
    arguments.pop("launch_token", None)
    token = form.cleaned_data.get("launch_token")
    launch = lambda: {"study": services.study_launch(user=request.user, **arguments).pk}  # noqa: E731
    try:
        # Namespaced: a form token can never collide with an API client's Idempotency-Key.
        result = idempotency.once(user=request.user, key=f"launch-form:{token}", payload=arguments,
                                  action=launch)[0] if token else launch()
        return Study.objects.get(pk=result["study"])
    except IdempotencyKeyReused:
        form.add_error(None, "This form was already used to launch a study; reload the page to launch another.")
    except ValidationError as error:
        apply_service_error(form, error)
    except ConflictError as error:
        form.add_error(None, f"Resolve these conflicts first: {'; '.join(str(c) for c in error.conflicts)}")
    except (PermissionDenied, BudgetRefused) as error:
        form.add_error(None, str(error))
    return None


@login_required
@require_POST
def ablation_launch(request: HttpRequest, key: str) -> HttpResponse:
    """The idea panel's "Run ablation" button: baseline vs baseline ⊕ this idea."""
    idea = idea_selectors.idea_get_for_user(key=key, user=request.user)
    form = AblationForm(request.POST, baselines=selectors.baselines_latest())
    if form.is_valid():
        arguments = {"kind": "ablation", "ideas": [idea.key], **form.cleaned_data}
        study = _launch(request, form, arguments)
        if study is not None:
            messages.success(request, f"Launched {study.label}: {study.title}.")
            return redirect("experiments:study_detail", study.pk)
    return render(request, "experiments/ablation_form.html", {"idea": idea, "form": form}, status=400)


def _integration_candidates(request: HttpRequest, show_all: bool) -> list[Idea]:
    states = OPEN_STATES if show_all else (Status.IN_INTEGRATION,)
    ideas = visible_ideas(request.user).filter(status__in=states)
    return list(ideas.select_related("area").order_by("number"))


def _integration_form(request: HttpRequest, data=None) -> IntegrationForm:
    show_all = (data or request.GET).get("show") == "all"
    return IntegrationForm(data, baselines=selectors.baselines_latest(), ideas=_integration_candidates(request, show_all),
                           launchable_areas=launchable_area_ids(request.user),
                           initial={"baseline": request.GET.get("baseline", "")})


@login_required
def study_new(request: HttpRequest) -> HttpResponse:
    """New integration study: pick a baseline and ideas, see the composed patch and conflicts, launch."""
    data = request.POST if request.method == "POST" else None
    form = _integration_form(request, data)
    # The preview is worked out before launching, so a refused launch shows the form and its preview as they were.
    preview_context = _preview_context(request, form)
    if data is not None and form.is_valid():
        study = _launch(request, form, form.launch_arguments())
        if study is not None:
            messages.success(request, f"Launched {study.label}: {study.title}.")
            return redirect("experiments:study_detail", study.pk)
    context = {"form": form, "show_all": (data or request.GET).get("show") == "all", **preview_context}
    return render(request, "experiments/study_new.html", context, status=400 if data is not None else 200)


def _preview_context(request: HttpRequest, form: IntegrationForm) -> dict:
    """What launching the form's study would do (arms, runs, composed patch, conflicts, GPU-hours, the grant,
    who may launch) — the same preview as ``POST /api/v1/studies/preview/`` — or why it cannot be planned yet."""
    if not form.is_bound or not form.is_valid():
        return {"plan": None, "plan_errors": []}
    arguments = form.launch_arguments()
    for launch_only in ("title", "override_reason"):
        arguments.pop(launch_only)
    try:
        planned = preview.study_preview(user=request.user, **arguments)
    except ValidationError as error:
        return {"plan": None, "plan_errors": error.messages}
    plan = planned.plan
    return {"plan": plan, "preview": planned, "plan_errors": [], "resolutions": form.resolutions(),
            "blocked": form.blocked_choices(),
            "conflict_keys": {conflict.key for conflict in plan.conflicts},
            "shared_runs": len(plan.arms) * len(plan.seeds) - len(plan.runs)}


@login_required
@require_POST
def study_preview(request: HttpRequest) -> HttpResponse:
    """htmx: the preview panel of the new-study form, re-rendered on every change. "Drop" removes an idea
    from the selection and re-renders the whole form."""
    data = request.POST.copy()
    drop = data.pop("drop", [])
    if drop:
        data.setlist("ideas", [key for key in data.getlist("ideas") if key not in drop])
    form = _integration_form(request, data)
    form.is_valid()
    context = {"form": form, "show_all": data.get("show") == "all", **_preview_context(request, form)}
    template = "experiments/_study_form.html" if drop else "experiments/_study_preview.html"
    return render(request, template, context)


# --------------------------------------------------------------------------------------------- run page


def _baseline_run(run: Run) -> Run | None:
    """The baseline arm's run of the same seed in the same study (what the config diff compares to)."""
    return (Run.objects.filter(study_id=run.study_id, seed=run.seed, arms__kind="baseline")
            .exclude(pk=run.pk).only("id", "config", "public_id").first())


def _run_live_context(run: Run) -> dict:
    attempt = selectors.latest_attempt(run)
    if attempt is None:
        log = ""
    elif attempt.log_tail:
        log = attempt.log_tail
    else:
        log = runfiles.log_tail(attempt.log_path)
    return {"run": run, "attempt": attempt, "log": log, "live": _shows_live(run)}


def _shows_live(run: Run) -> bool:
    """Whether the run page keeps polling: a preempted run is about to come back."""
    return run.is_live or run.status == RunStatus.PREEMPTED


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    baseline_run = _baseline_run(run)
    context = _run_live_context(run)
    panels = run_charts.run_panels(run)
    context.update(
        panels=panels,
        panel_data={panel.name: panel.series for panel in panels if panel.series},
        smoothing_choices=charts.SMOOTHING_CHOICES, has_charts=True,
        annotate_form=RunAnnotateForm(initial={"notes": run.notes, "tags": " ".join(run.tag_names)}),
        study=run.study,
        arms=list(run.arms.all()),
        baseline_run=baseline_run,
        diff=configdiff.config_diff(run.config, baseline_run.config) if baseline_run else [],
        attempts=list(run.attempts.all()),
        checkpoints=runfiles.checkpoints(run.run_dir),
        can_manage=can_manage_study(request.user, run.study),
    )
    return render(request, "experiments/run_detail.html", context)


@login_required
@require_POST
def run_annotate(request: HttpRequest, run_id: int) -> HttpResponse:
    """Notes and tags of a run; the form comes back with the error (and what was typed) when refused."""
    run = _run(request, run_id)
    form = RunAnnotateForm(request.POST)
    if form.is_valid():
        try:
            services.run_annotate(run=run, user=request.user, notes=form.cleaned_data["notes"],
                                  tags=form.cleaned_data["tags"].split())
        except ValidationError as error:
            apply_service_error(form, error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Saved the notes and tags of {run.public_id}.")
            return redirect("experiments:run_detail", run.pk)
    return render(request, "experiments/run_annotate.html", {"run": run, "form": form}, status=400)


@login_required
def run_panels(request: HttpRequest, run_id: int) -> JsonResponse:
    """The run page's metric panels as JSON, polled while the run is live so its charts fill in and gain new
    metrics without a reload; ``live`` false tells the page to stop polling."""
    run = _run(request, run_id)
    panels = [{"name": panel.name, "title": panel.title, "series": panel.series, "empty": panel.empty}
              for panel in run_charts.run_panels(run)]
    return JsonResponse({"live": _shows_live(run), "panels": panels})


@login_required
def run_live(request: HttpRequest, run_id: int) -> HttpResponse:
    """Status, progress and log tail of a run, polled by the run page while it is live."""
    return render(request, "experiments/_run_live.html", _run_live_context(_run(request, run_id, selectors.run_for_polls)))


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    try:
        services.run_cancel(run=run, user=request.user)
    except RunStateConflict as error:
        messages.error(request, str(error))
    else:
        messages.info(request, f"Cancel requested for {run.public_id}; it checkpoints and stops.")
    return redirect("experiments:run_detail", run.pk)


@login_required
@require_POST
def run_resume(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    try:
        attempt = services.run_resume(run=run, user=request.user)
    except RunStateConflict as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Queued attempt {attempt.number} of {run.public_id}; it resumes from its last checkpoint.")
    return redirect("experiments:run_detail", run.pk)


@login_required
@require_POST
def run_rerun(request: HttpRequest, run_id: int) -> HttpResponse:
    """Re-run: a new study of the same kind on the same pinned baseline version, ideas, resolutions and
    budget with this run's seed only, so it contains this run's config again (unless an idea's patch
    changed since, which the message says)."""
    run = _run(request, run_id)
    study = run.study
    try:
        rerun = services.study_launch(
            user=request.user, kind=study.kind, baseline=study.baseline,
            ideas=[member.idea.key for member in study.study_ideas.select_related("idea")], seeds=[run.seed],
            max_steps=study.max_steps, leave_one_out=study.leave_one_out, resolutions=study.resolutions,
            backend=study.backend, title=f"Re-run of {run.public_id} ({study.label})",
        )
    except (ValidationError, ConflictError, PermissionDenied, BudgetRefused) as error:
        messages.error(request, f"Cannot re-run {run.public_id}: {'; '.join(getattr(error, 'messages', [str(error)]))}")
        return redirect("experiments:run_detail", run.pk)
    twin = rerun.runs.filter(config_hash=run.config_hash).first()
    if twin is None:
        messages.warning(request, f"Launched {rerun.label}, but the ideas' patches changed since {run.public_id}: "
                                  "no run of it has the identical config.")
        return redirect("experiments:study_detail", rerun.pk)
    messages.success(request, f"Launched {rerun.label}; {twin.public_id} re-runs the identical config.")
    return redirect("experiments:run_detail", twin.pk)


# -------------------------------------------------------------------------------------------- baselines


@login_required
def corpus_list(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/corpus_list.html", {"corpora": selectors.corpora_list()})


@login_required
def baseline_list(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/baseline_list.html", {"baselines": selectors.baselines_latest()})


@login_required
def baseline_detail(request: HttpRequest, name: str) -> HttpResponse:
    versions = list(selectors.baseline_versions(name).select_related("created_by"))
    if not versions:
        raise Http404(f"no baseline {name!r}")
    changes = [
        (version, configdiff.config_diff({"model": version.overrides}, {"model": older.overrides}) if older else [])
        for version, older in zip(versions, [*versions[1:], None])
    ]
    studies = selectors.studies_with_arms(user=request.user).filter(baseline__name=name)[:STUDIES_PER_PAGE]
    context = {"name": name, "latest": versions[0], "changes": changes, "rows": study_rows(list(studies))}
    return render(request, "experiments/baseline_detail.html", context)
