"""Server-rendered pages (htmx for in-place updates). Each view parses, calls one service or selector,
and renders; objects are always fetched through the selectors' *_get_for_user helpers."""
from collections.abc import Sequence

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from core.forms import apply_service_error, parse_lines
from core.http import is_htmx
from ideas import list_cache, permissions, selectors, services, visibility
from ideas.errors import IllegalTransition
from ideas.forms import (
    CommentForm,
    HandoverForm,
    IdeaFilterForm,
    IdeaForm,
    TransitionForm,
    patch_to_text,
)
from ideas.lifecycle import DECISION_REQUIRED, allowed_targets
from ideas.models import Area, Idea
from ideas.patch_warnings import patch_warnings
from inbox import selectors as inbox_selectors

IDEAS_PER_PAGE = 25


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "ideas/home.html",
        {
            "my_ideas": selectors.ideas_submitted_by(request.user),
            "triage": selectors.triage_queue(request.user),
            "piloted_areas": selectors.areas_piloted_by(request.user),
            "activity": selectors.recent_activity(user=request.user),
            "notifications": inbox_selectors.latest_messages(request.user),
        },
    )


@login_required
def idea_list(request: HttpRequest) -> HttpResponse:
    if jump := selectors.idea_for_pasted_key(request.GET.get("q", ""), user=request.user):
        # A pasted key jumps to the idea (htmx follows HX-Redirect; a plain GET gets a redirect).
        if is_htmx(request):
            return HttpResponse(status=204, headers={"HX-Redirect": jump.get_absolute_url()})
        return redirect(jump)
    body_template = "ideas/_idea_results.html" if is_htmx(request) else "ideas/_idea_list_body.html"

    def render_body(areas: Sequence[tuple[str, str, str]]) -> str:
        form = IdeaFilterForm(request.GET or None, areas=areas, tags=selectors.tag_names(user=request.user))
        filters = selectors.IdeaFilters(**form.cleaned_data) if form.is_valid() else selectors.IdeaFilters()
        page = selectors.idea_list_page(user=request.user, filters=filters, number=request.GET.get("page"),
                                        per_page=IDEAS_PER_PAGE)
        return render_to_string(body_template, {"form": form, "page": page}, request=request)

    body = list_cache.cached_body(
        user=request.user, variant=body_template, query=request.GET.urlencode(),
        area_choices=lambda: selectors.area_filter_choices(user=request.user), render=render_body)
    if is_htmx(request):
        return HttpResponse(body)
    return render(request, "ideas/idea_list.html", {"body": mark_safe(body)})  # rendered by our own template, escaped there


@login_required
def idea_submit(request: HttpRequest) -> HttpResponse:
    initial = {"area": selectors.area_by_slug(request.GET.get("area", ""), user=request.user)}
    form = IdeaForm(request.POST or None, initial=initial, areas=visibility.visible_areas(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            idea = services.idea_create(submitter=request.user, **form.cleaned_data)
        except ValidationError as error:
            apply_service_error(form, error)
        else:
            messages.success(request, f"{idea.key} submitted. The PIC of {idea.area.name} will triage it.")
            for warning in patch_warnings(idea.recipe_patch):
                messages.warning(request, warning)
            return redirect(idea)
    status = 400 if request.method == "POST" else 200
    return render(request, "ideas/idea_form.html", {"form": form, "idea": None}, status=status)


@login_required
def idea_edit(request: HttpRequest, key: str) -> HttpResponse:
    idea = selectors.idea_get_for_user(key=key, user=request.user)
    if not permissions.can_edit_idea(request.user, idea):
        raise PermissionDenied("only the submitter may edit, and only while the idea is submitted")
    initial = {
        "title": idea.title,
        "area": idea.area,
        "summary": idea.summary,
        "hypothesis": idea.hypothesis,
        "recipe_patch": patch_to_text(idea.recipe_patch),
        "estimated_gpu_hours": idea.estimated_gpu_hours,
        "tags": ", ".join(idea.tags.values_list("name", flat=True)),
    }
    form = IdeaForm(request.POST or None, initial=initial, areas=visibility.visible_areas(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            idea = services.idea_update(idea=idea, by=request.user, changes=form.cleaned_data)
        except ValidationError as error:
            apply_service_error(form, error)
        else:
            messages.success(request, f"{idea.key} updated.")
            for warning in patch_warnings(idea.recipe_patch):
                messages.warning(request, warning)
            return redirect(idea)
    status = 400 if request.method == "POST" else 200
    return render(request, "ideas/idea_form.html", {"form": form, "idea": idea}, status=status)


def _detail(request: HttpRequest, idea: Idea, *, transition_form: TransitionForm | None = None,
            comment_form: CommentForm | None = None, status: int = 200) -> HttpResponse:
    targets = allowed_targets(idea.status)
    return render(
        request,
        "ideas/idea_detail.html",
        {
            "idea": idea,
            "tags": list(idea.tags.all()),
            "timeline": selectors.idea_timeline(idea),
            "comments": selectors.idea_comments(idea),
            "comment_form": comment_form or CommentForm(),
            "watching": selectors.idea_is_watched_by(idea, request.user),
            "can_move": permissions.can_move_idea(request.user, idea),
            "can_edit": permissions.can_edit_idea(request.user, idea),
            "quick_targets": [t for t in targets if t not in DECISION_REQUIRED],
            "decision_targets": [t for t in targets if t in DECISION_REQUIRED],
            "transition_form": transition_form or TransitionForm(),
            "extra_panels": settings.FLIGHTDECK_IDEA_PANELS,
        },
        status=status,
    )


@login_required
def idea_detail(request: HttpRequest, key: str) -> HttpResponse:
    idea = selectors.idea_get_for_user(key=key, user=request.user)
    if idea.key != key:  # people paste idea-42; the canonical URL spells the key in full
        return redirect(idea, permanent=True)
    return _detail(request, idea)


def _transition_from(request: HttpRequest, idea: Idea, form: TransitionForm) -> tuple[int, str]:
    """Run the move described by a valid ``form``; (HTTP status, message) — errors land on the form."""
    data = form.cleaned_data
    decision = None
    if data["decision_summary"] or data["decision_links"]:
        decision = services.DecisionInput(summary=data["decision_summary"], links=parse_lines(data["decision_links"]))
    try:
        transition = services.idea_transition(
            idea=idea, to_status=data["to_status"], by=request.user, note=data["note"], decision=decision
        )
    except ValidationError as error:
        apply_service_error(form, error, form.SERVICE_FIELDS)
        return 400, ""
    except IllegalTransition as error:
        form.add_error(None, str(error))
        return 409, ""
    return 200, f"{idea.key} moved to {transition.get_to_status_display()}."


@login_required
@require_POST
def idea_move(request: HttpRequest, key: str) -> HttpResponse:
    idea = selectors.idea_get_for_user(key=key, user=request.user)
    form = TransitionForm(request.POST)
    status = 400
    if form.is_valid():
        status, message = _transition_from(request, idea, form)
        if status == 200:
            messages.success(request, message)
            return redirect(idea)
    return _detail(request, idea, transition_form=form, status=status)


@login_required
@require_POST
def idea_comment(request: HttpRequest, key: str) -> HttpResponse:
    idea = selectors.idea_get_for_user(key=key, user=request.user)
    form = CommentForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            services.comment_create(idea=idea, author=request.user, body=form.cleaned_data["body"])
        except ValidationError as error:
            apply_service_error(form, error)
        else:
            if not is_htmx(request):
                return redirect(f"{idea.get_absolute_url()}#comments")
            form, status = CommentForm(), 200
    if not is_htmx(request):
        return _detail(request, idea, comment_form=form, status=status)
    context = {"idea": idea, "comments": selectors.idea_comments(idea), "comment_form": form}
    return render(request, "ideas/_comments.html", context, status=status)


@login_required
@require_POST
def idea_watch(request: HttpRequest, key: str) -> HttpResponse:
    idea = selectors.idea_get_for_user(key=key, user=request.user)
    watching = request.POST.get("watching") == "1"
    services.idea_set_watching(idea=idea, user=request.user, watching=watching)
    if is_htmx(request):
        return render(request, "ideas/_watch_button.html", {"idea": idea, "watching": watching})
    return redirect(idea)


@login_required
def area_list(request: HttpRequest) -> HttpResponse:
    return _areas_page(request)


def _areas_page(request: HttpRequest, *, failed_form: tuple[str, HandoverForm] | None = None,
                status: int = 200) -> HttpResponse:
    areas = list(selectors.areas_overview(user=request.user))
    forms = {area.slug: HandoverForm(prefix=area.slug) for area in areas if permissions.can_hand_over(request.user, area)}
    if failed_form is not None:
        forms[failed_form[0]] = failed_form[1]
    for area in areas:
        area.handover_form = forms.get(area.slug)
    context = {"areas": areas, "my_area_ids": selectors.volunteered_area_ids(request.user)}
    return render(request, "ideas/area_list.html", context, status=status)


@login_required
@require_POST
def area_volunteer(request: HttpRequest, slug: str) -> HttpResponse:
    area = selectors.area_get_for_user(slug=slug, user=request.user)
    if request.POST.get("volunteer") == "1":
        services.area_volunteer(area=area, user=request.user)
        messages.success(request, f"You volunteered for {area.name}.")
    else:
        services.area_leave(area=area, user=request.user)
        messages.info(request, f"You left {area.name}.")
    return redirect("area_list")


@login_required
@require_POST
def area_launcher(request: HttpRequest, slug: str) -> HttpResponse:
    """The PIC allows a volunteer to launch and cancel the area's studies, or takes it back."""
    area = selectors.area_get_for_user(slug=slug, user=request.user)
    user_id = request.POST.get("user", "")
    volunteer = area.volunteers.filter(pk=int(user_id)).first() if user_id.isdigit() else None
    if volunteer is None:
        raise Http404(f"no volunteer {user_id!r} in {area.name}")
    can_launch = request.POST.get("can_launch") == "1"
    services.area_launcher_set(area=area, user=volunteer, can_launch=can_launch, by=request.user)
    verb = "may now launch" if can_launch else "may no longer launch"
    messages.success(request, f"{volunteer} {verb} studies in {area.name}.")
    return redirect("area_list")


@login_required
@require_POST
def area_hand_over(request: HttpRequest, slug: str) -> HttpResponse:
    area = selectors.area_get_for_user(slug=slug, user=request.user)
    form = HandoverForm(request.POST, prefix=area.slug)
    if form.is_valid():
        try:
            services.area_hand_over(area=area, by=request.user, **form.cleaned_data)
        except ValidationError as error:
            apply_service_error(form, error)
        else:
            messages.success(request, f"{form.cleaned_data['to_user']} is now the PIC of {area.name}.")
            return redirect("area_list")
    return _areas_page(request, failed_form=(area.slug, form), status=400)


def _board(request: HttpRequest, area: Area, *, error: str = "", status: int = 200) -> HttpResponse:
    can_move = permissions.can_move_in_area(request.user, area)
    context = {"area": area, "columns": selectors.area_board(area), "can_move": can_move, "board_error": error}
    template = "ideas/_board.html" if is_htmx(request) else "ideas/area_board.html"
    return render(request, template, context, status=status)


@login_required
def area_board(request: HttpRequest, slug: str) -> HttpResponse:
    return _board(request, selectors.area_get_for_user(slug=slug, user=request.user))


@login_required
@require_POST
def area_board_move(request: HttpRequest, slug: str) -> HttpResponse:
    """A click on a board card: move one idea of this area along the lifecycle, re-render the board."""
    area = selectors.area_get_for_user(slug=slug, user=request.user)
    idea = selectors.idea_get_for_user(key=request.POST.get("key", ""), user=request.user)
    if idea.area_id != area.pk:
        return _board(request, area, error=f"{idea.key} is not in {area.name}", status=400)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        return _board(request, area, error="; ".join(form.errors.get("to_status", [])), status=400)
    status, message = _transition_from(request, idea, form)
    error = "; ".join(str(e) for errors in form.errors.values() for e in errors)
    if status == 200 and not is_htmx(request):
        messages.success(request, message)
        return redirect(area)
    return _board(request, area, error=error, status=status)


def api_help(request: HttpRequest) -> HttpResponse:
    """The API and the `flightdeck` client explained, with a worked example per resource."""
    return render(request, "ideas/api_help.html", {"site": request.build_absolute_uri("/").rstrip("/")})

