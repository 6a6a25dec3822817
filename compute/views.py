"""Compute pages (htmx for in-place review decisions): parse, call one service or selector, render.

Every page is for signed-in members; the review queue is for reviewers. Each table on a page can be
downloaded as CSV from the same selector that drew it.
"""
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from compute import charts, evidence, ledger, permissions, report, selectors, services
from compute.csv_export import table_response
from compute.cycles import Phase
from compute.desk import desk_panel, desk_requests, desk_rows, filtered_requests, review_desk
from compute.errors import ComputeConflict, RequestAlreadyOpen
from compute.figures import cycle_figures
from compute.forms import GrantForm, PhaseForm, RequestForm, ReviewForm, form_error_text
from compute.models import Request
from compute.visibility import visible_requests
from core.forms import apply_service_error, parse_lines
from core.selectors import get_or_404
from ideas.models import Idea
from ideas.selectors import parse_idea_key


def _cycle_from_query(request: HttpRequest):
    """The cycle named by ``?cycle=`` or the current one; 404 when there are no cycles at all."""
    raw = request.GET.get("cycle", "")
    if raw:
        if not raw.isdigit():
            raise Http404("cycle must be a number")
        return selectors.cycle_get(int(raw))
    cycle = selectors.cycle_current()
    if cycle is None:
        raise Http404("no cycles yet: beat creates them, or run `manage.py seed_demo`")
    return cycle


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """The current cycle's overview, or the one picked with ``?cycle=``."""
    cycle = _cycle_from_query(request) if request.GET.get("cycle") else selectors.cycle_current()
    if cycle is None:
        return render(request, "compute/no_cycles.html")
    return redirect("compute:cycle", cycle.pk)


@login_required
def cycle_overview(request: HttpRequest, cycle_id: int) -> HttpResponse:
    overview = selectors.cycle_overview(selectors.cycle_get(cycle_id), user=request.user)
    context = {"overview": overview, "cycle": overview.cycle}
    context.update(
        areas_chart=charts.areas_requested_granted_used(overview),
        burn_chart=charts.org_burn_down(overview),
        pools_chart=charts.pool_utilisation(overview, Decimal(settings.FLIGHTDECK_COMPUTE_TARGET_UTILISATION)),
        can_move_phase=permissions.can_move_phase(request.user),
        next_phase=Phase(overview.cycle.next_phases[0]) if overview.cycle.next_phases else None,
        open_cycle=selectors.cycle_open_for_requests(),
        has_charts=True,
    )
    return render(request, "compute/cycle_overview.html", context)


CYCLE_TABLES = {
    "areas": lambda cycle, user: selectors.cycle_overview(cycle, user=user).areas,
    "pools": lambda cycle, user: selectors.cycle_overview(cycle, user=user).pools,
    "forecast": lambda cycle, user: selectors.cycle_overview(cycle, user=user).forecast,
    "burndown": lambda cycle, user: selectors.burn_down_table(selectors.cycle_overview(cycle, user=user)),
    "requests": lambda cycle, user: selectors.requests_table(desk_requests(cycle, user=user, status="all")),
    "allocations": lambda cycle, user: selectors.allocations_table(cycle, user=user),
    **{name: (lambda cycle, user, name=name: getattr(report.cycle_report(cycle, user=user), name)) for name in report.TABLES},
}


@login_required
def cycle_report(request: HttpRequest, cycle_id: int) -> HttpResponse:
    data = report.cycle_report(selectors.cycle_get(cycle_id), user=request.user)
    return render(request, "compute/cycle_report.html", {"report": data, "cycle": data.cycle, "cycles": selectors.cycle_list()})


@login_required
def cycle_csv(request: HttpRequest, cycle_id: int, table: str) -> HttpResponse:
    if table not in CYCLE_TABLES:
        raise Http404(f"no table {table!r}; tables: {', '.join(CYCLE_TABLES)}")
    cycle = selectors.cycle_get(cycle_id)
    return table_response(CYCLE_TABLES[table](cycle, request.user), filename=f"cycle-{cycle.first_day}-{table}.csv")


@login_required
@require_POST
def cycle_phase(request: HttpRequest, cycle_id: int) -> HttpResponse:
    form = PhaseForm(request.POST)
    cycle = selectors.cycle_get(cycle_id)
    if form.is_valid():
        try:
            services.cycle_set_phase(cycle=cycle, phase=form.cleaned_data["phase"], actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Cycle {cycle} moved to {form.cleaned_data['phase']}.")
    return redirect("compute:cycle", cycle.pk)


# --- review queue ---------------------------------------------------------------------------------------


def _require_reviewer(request: HttpRequest) -> None:
    if not permissions.is_reviewer(request.user):
        raise PermissionDenied(f"the review queue is for members of the {settings.FLIGHTDECK_COMPUTE_REVIEWER_GROUP!r} group")


@login_required
def review_queue(request: HttpRequest, cycle_id: int) -> HttpResponse:
    """The review desk: filters and sorting in the URL, a page of requests, the running budget panel."""
    _require_reviewer(request)
    desk = review_desk(selectors.cycle_get(cycle_id), data=request.GET, user=request.user)
    context = {"desk": desk, "cycle": desk.cycle, "cycles": selectors.cycle_list(), "panel": desk.panel}
    return render(request, "compute/review_queue.html", context, status=400 if desk.form.errors else 200)


@login_required
def review_panel(request: HttpRequest, cycle_id: int) -> HttpResponse:
    """The desk's budget panel alone: htmx reloads it whenever a decision answers with ``budgetChanged``."""
    _require_reviewer(request)
    cycle = selectors.cycle_get(cycle_id)
    return render(request, "compute/_budget_panel.html", {"panel": desk_panel(cycle), "cycle": cycle})


def _desk_row_response(request: HttpRequest, compute_request: Request, *, error: str = "", status: int = 200) -> HttpResponse:
    """The decided (or refused-with-the-error) row; a decision also tells the page to reload the budget panel
    (a table row and a panel cannot travel in one htmx answer: HTML parses a lone ``<tr>`` only in a table)."""
    compute_request = selectors.request_queue_item(compute_request.pk)
    previous = selectors.cycle_before(compute_request.cycle)
    row = desk_rows([compute_request], previous=cycle_figures(previous, ideas=False) if previous else None)[0]
    response = render(request, "compute/_review_row.html", {"row": row, "error": error}, status=status)
    if not error:
        response["HX-Trigger"] = "budgetChanged"
    return response


@login_required
@require_POST
def request_review(request: HttpRequest, request_id: int) -> HttpResponse:
    """The reviewer's decision from the desk; answers with the request's row, decided or with the error."""
    compute_request = get_object_or_404(
        visible_requests(request.user).select_related("area", "idea", "pool", "requester", "cycle"), pk=request_id
    )
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return _desk_row_response(request, compute_request, error=form_error_text(form), status=400)
    try:
        services.request_review(request=compute_request, reviewer=request.user, **form.cleaned_data)
    except PermissionDenied as denied:
        return _desk_row_response(request, compute_request, error=str(denied), status=403)
    except ValidationError as invalid:
        return _desk_row_response(request, compute_request, error=" ".join(invalid.messages), status=400)
    except ComputeConflict as conflict:
        return _desk_row_response(request, compute_request, error=str(conflict), status=409)
    return _desk_row_response(request, compute_request)


@login_required
def review_csv(request: HttpRequest, cycle_id: int) -> HttpResponse:
    """The desk's requests as CSV, filtered and sorted as its URL says (every page, not just one)."""
    _require_reviewer(request)
    cycle = selectors.cycle_get(cycle_id)
    form, requests = filtered_requests(cycle, data=request.GET, user=request.user)
    if form.errors:
        return HttpResponse(form.error_text(), status=400, content_type="text/plain; charset=utf-8")
    return table_response(selectors.requests_table(requests), filename=f"cycle-{cycle.first_day}-review.csv")


@login_required
@require_POST
def requests_bulk_approve(request: HttpRequest, cycle_id: int) -> HttpResponse:
    """Approve the selected pilot requests (all or none), then back to the desk as it was filtered."""
    _require_reviewer(request)
    cycle = selectors.cycle_get(cycle_id)
    ids = [int(raw) for raw in request.POST.getlist("requests") if raw.isdigit()]
    try:
        reviews = services.requests_approve_pilots(cycle=cycle, request_ids=ids, reviewer=request.user)
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
    except (ComputeConflict, PermissionDenied) as refused:
        messages.error(request, str(refused))
    else:
        granted = sum(review.granted_hours for review in reviews)
        messages.success(request, f"Approved {len(reviews)} pilot request{'s' if len(reviews) != 1 else ''}: {granted} GPU-h granted.")
    back = request.POST.get("back", "")
    return redirect(reverse("compute:review_queue", args=[cycle.pk]) + (f"?{back}" if back and "//" not in back else ""))


# --- requests -----------------------------------------------------------------------------------------


@login_required
def request_new(request: HttpRequest) -> HttpResponse:
    """A new request; when its target already has an open one, the page offers to amend that one instead."""
    cycle = selectors.cycle_open_for_requests()
    amendable = None
    form = RequestForm(request.POST or None, initial=request.GET.dict(), user=request.user)
    if request.method == "POST" and form.is_valid() and cycle is not None:
        data = dict(form.cleaned_data)
        data["evidence_links"] = parse_lines(data["evidence_links"])
        data["open_request"] = "amend" if data.pop("amend") else "refuse"
        try:
            compute_request, created = services.request_submit(requester=request.user, cycle=cycle, **data)
        except ValidationError as error:
            apply_service_error(form, error)
        except RequestAlreadyOpen as already_open:
            form.add_error(None, str(already_open))
            amendable = already_open.details["request"] if already_open.details["can_amend"] else None
        except (ComputeConflict, PermissionDenied) as refused:
            form.add_error(None, str(refused))
        else:
            verb = "submitted" if created else "updated (the previous text is kept in its history)"
            messages.success(request, f"Request #{compute_request.pk} for {compute_request.target_label} {verb}.")
            return redirect(reverse("compute:budget", args=[compute_request.area.slug]) + f"?cycle={cycle.pk}")
    status = 400 if request.method == "POST" else 200
    return render(request, "compute/request_form.html", {"form": form, "cycle": cycle, "amendable": amendable}, status=status)


# --- area page ----------------------------------------------------------------------------------------


@login_required
def area_budget(request: HttpRequest, slug: str) -> HttpResponse:
    area = selectors.area_get(slug, user=request.user)
    cycle = _cycle_from_query(request)
    budget = selectors.area_budget(area, cycle)
    can_split = permissions.can_split_area(request.user, area)
    open_cycle = selectors.cycle_open_for_requests()
    prefill = {"area": area.slug, "gpu_hours": budget.suggested_request or "", "stage": "scale-up" if budget.used else "pilot",
               **evidence.request_prefill(area, user=request.user)}
    return render(
        request,
        "compute/area_budget.html",
        {
            "area": area,
            "cycle": cycle,
            "budget": budget,
            "cycles": selectors.cycle_list(),
            "can_split": can_split,
            "grant_form": GrantForm(area=area) if can_split else None,
            "open_cycle": open_cycle,
            "request_prefill": prefill,
        },
    )


@login_required
@require_POST
def area_grant(request: HttpRequest, slug: str) -> HttpResponse:
    area = selectors.area_get(slug, user=request.user)
    cycle = _cycle_from_query(request)
    form = GrantForm(request.POST, area=area)
    target = reverse("compute:budget", args=[area.slug]) + f"?cycle={cycle.pk}"
    if not form.is_valid():
        messages.error(request, form_error_text(form))
        return redirect(target)
    try:
        grant = services.allocation_set(cycle=cycle, area=area, actor=request.user, **form.cleaned_data)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except ComputeConflict as conflict:
        messages.error(request, str(conflict))
    else:
        messages.success(request, f"{selectors.allocation_label(grant).capitalize()} is now {grant.gpu_hours} GPU-h.")
    return redirect(target)


AREA_TABLES = {"grants", "ideas"}


@login_required
def area_csv(request: HttpRequest, slug: str, table: str) -> HttpResponse:
    if table not in AREA_TABLES:
        raise Http404(f"no table {table!r}; tables: {', '.join(sorted(AREA_TABLES))}")
    area = selectors.area_get(slug, user=request.user)
    cycle = _cycle_from_query(request)
    budget = selectors.area_budget(area, cycle)
    return table_response(getattr(budget, table), filename=f"{area.slug}-{cycle.first_day}-{table}.csv")


# --- usage ledger --------------------------------------------------------------------------------------


def _ledger_target(request: HttpRequest, slug: str):
    """The area (404 when hidden), the cycle and the optional ``?idea=<key>`` of that area."""
    area = selectors.area_get(slug, user=request.user)
    idea = None
    if key := request.GET.get("idea"):
        number = parse_idea_key(key)
        idea = get_or_404(Idea.objects.filter(area=area), f"no idea {key!r} in {area.name}", number=number if number is not None else -1)
    return area, _cycle_from_query(request), idea


@login_required
def usage_ledger(request: HttpRequest, slug: str) -> HttpResponse:
    area, cycle, idea = _ledger_target(request, slug)
    data = ledger.usage_ledger(cycle, area=area, idea=idea, page=request.GET.get("page") or 1)
    return render(request, "compute/ledger.html", {"ledger": data, "cycle": cycle, "area": area, "cycles": selectors.cycle_list()})


@login_required
def usage_ledger_csv(request: HttpRequest, slug: str) -> HttpResponse:
    area, cycle, idea = _ledger_target(request, slug)
    name = f"{area.slug}{'-' + idea.key if idea else ''}-{cycle.first_day}-ledger.csv"
    return table_response(ledger.ledger_table(cycle, area=area, idea=idea), filename=name)


# --- trends ------------------------------------------------------------------------------------------


@login_required
def trends(request: HttpRequest) -> HttpResponse:
    data = selectors.trends(user=request.user)
    return render(
        request,
        "compute/trends.html",
        {"trends": data, "area_chart": charts.area_trends(data), "landed_chart": charts.landed_idea_cost(data), "has_charts": True},
    )


@login_required
def trends_csv(request: HttpRequest, table: str) -> HttpResponse:
    data = selectors.trends(user=request.user)
    if table not in {"per_area", "landed"}:
        raise Http404(f"no table {table!r}; tables: per_area, landed")
    return table_response(getattr(data, table), filename=f"compute-trends-{table}.csv")

