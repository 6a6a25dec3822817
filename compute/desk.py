"""The review desk: a cycle's requests as a filterable, sortable, paginated table with the evidence beside
each request and a running budget panel (per pool and for the org).

A fixed number of queries per page, however many requests the cycle has (pinned by a test and measured by
``benchmarks/compute_review_desk.py``): filter choices, the page of requests with a count, the evidence of
that page's links, this cycle's and the previous cycle's figures.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import Case, IntegerField, QuerySet, Value, When

from compute import evidence
from compute.evidence import StudyEvidence
from compute.figures import CycleFigures, Figures, cycle_figures
from compute.forms import form_error_text
from compute.models import Cycle, Pool, Request, Stage
from compute.selectors import cycle_before
from compute.visibility import compute_q, visible_compute_areas
from core.types import User
from ideas.models import Area

PER_PAGE = 50
STAGE_RANK = Case(
    When(stage=Stage.INTEGRATION, then=Value(0)), When(stage=Stage.SCALE_UP, then=Value(1)), default=Value(2),
    output_field=IntegerField(),
)
# Sortable columns: ?sort=<name> ascending, ?sort=-<name> descending.
SORTS = {
    "id": ("pk",),
    "area": ("area__name",),
    "idea": ("idea__number",),
    "requester": ("requester__username",),
    "pool": ("pool__name",),
    "stage": ("stage_rank",),
    "hours": ("gpu_hours",),
    "age": ("-created_at",),  # ascending age = youngest first
}
DEFAULT_SORT = "-hours"
# The table's columns after the checkbox: (sort name or "" when not sortable, heading, numeric).
COLUMNS = [
    ("id", "#", False), ("area", "Area", False), ("idea", "Idea", False), ("requester", "Requester", False),
    ("pool", "Pool", False), ("stage", "Stage", False), ("hours", "GPU-h", True), ("", "Evidence", False),
    ("age", "Age", True),
]
STATUS_CHOICES = [("open", "Open"), ("decided", "Decided"), ("all", "All"), *[(s, label) for s, label in Request.Status.choices if s != "open"]]


class DeskFilterForm(forms.Form):
    """The desk's URL: ``?area=<slug>&pool=<name>&stage=&status=&requester=&sort=&page=`` (shareable)."""

    area = forms.ModelChoiceField(queryset=Area.objects.none(), to_field_name="slug", required=False, empty_label="All areas")
    pool = forms.ModelChoiceField(queryset=Pool.objects.order_by("name"), to_field_name="name", required=False, empty_label="All pools")
    stage = forms.ChoiceField(choices=[("", "All stages"), *Stage.choices], required=False)
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    requester = forms.ModelChoiceField(queryset=get_user_model().objects.none(), to_field_name="username", required=False, empty_label="Anyone")
    sort = forms.ChoiceField(choices=[(f"{sign}{name}", f"{sign}{name}") for name in SORTS for sign in ("", "-")], required=False)
    page = forms.IntegerField(min_value=1, required=False)

    def __init__(self, data, *, cycle: Cycle, user: User):
        super().__init__(data)
        self.fields["area"].queryset = visible_compute_areas(user).order_by("name")
        requesters = Request.objects.filter(cycle=cycle).values("requester_id")
        self.fields["requester"].queryset = get_user_model().objects.filter(pk__in=requesters).order_by("username")

    def error_text(self) -> str:
        return form_error_text(self)

    FILTERS = ("area", "pool", "stage", "status", "requester")

    def options(self) -> list[tuple[str, str, list[tuple[str, str, bool]]]]:
        """(name, label, [(value, text, selected)]) per filter: the page draws the selects from these (Django's
        widget templates cost a tenth of the desk's render time)."""
        rows = []
        for name in self.FILTERS:
            current = self.data.get(name, "")
            choices = [(str(value), str(text), str(value) == current) for value, text in self.fields[name].choices]
            rows.append((name, name.capitalize(), choices))
        return rows


@dataclass
class DeskRow:
    request: Request
    studies: list[StudyEvidence]
    flag: str  # why a scale-up is not backed by a finished pilot; empty when it is (or is no scale-up)
    area_last_cycle: Figures | None


@dataclass
class PoolPanel:
    name: str
    figures: Figures


@dataclass
class BudgetPanel:
    """Per pool and for the org: granted so far this cycle, the budget, what is left to grant, still requested."""

    pools: list[PoolPanel]
    org: Figures
    open_requests: int


@dataclass
class ReviewDesk:
    cycle: Cycle
    form: DeskFilterForm
    page: Page
    rows: list[DeskRow]
    panel: BudgetPanel
    sort: str
    previous: Cycle | None
    filters: dict[str, str] = field(default_factory=dict)
    columns: list[tuple[str, str, bool]] = field(default_factory=lambda: COLUMNS)


def scale_up_flag(request: Request, studies: list[StudyEvidence]) -> str:
    """Small pilots first, more compute once the evidence is in: a scale-up needs a finished pilot linked."""
    if request.stage != Stage.SCALE_UP:
        return ""
    if not studies:
        return "scale-up without linked evidence"
    if not any(study.finished for study in studies):
        return "scale-up without a finished pilot"
    return ""


def budget_panel(figures: CycleFigures) -> BudgetPanel:
    pools = Pool.objects.in_bulk(figures.pool_ids())
    rows = [PoolPanel(pools[pool_id].name, figures.org(pool_id)) for pool_id in figures.pool_ids()]
    open_requests = Request.objects.filter(cycle=figures.cycle, status=Request.Status.OPEN).count()
    return BudgetPanel(pools=sorted(rows, key=lambda row: row.name), org=figures.org(), open_requests=open_requests)


def desk_requests(cycle: Cycle, *, user: User | None, area: Area | None = None, pool: Pool | None = None,
                  stage: str = "", status: str = "", requester=None, sort: str = DEFAULT_SORT) -> QuerySet[Request]:
    """The cycle's requests ``user`` may see, filtered and sorted as the desk's URL says."""
    requests = Request.objects.filter(cycle=cycle).select_related("area", "idea", "pool", "requester", "review__reviewer")
    if user is not None:
        requests = requests.filter(compute_q(user))
    if area is not None:
        requests = requests.filter(area=area)
    if pool is not None:
        requests = requests.filter(pool=pool)
    if stage:
        requests = requests.filter(stage=stage)
    if status == "decided":
        requests = requests.exclude(status=Request.Status.OPEN)
    elif status and status != "all":
        requests = requests.filter(status=status)
    if requester is not None:
        requests = requests.filter(requester=requester)
    descending, name = sort.startswith("-"), sort.lstrip("-")
    columns = [f"-{c}" if descending != c.startswith("-") else c.lstrip("-") for c in SORTS[name]]
    # Ties: larger requests and later stages first, then the oldest.
    return requests.annotate(stage_rank=STAGE_RANK).order_by(*columns, "-gpu_hours", "stage_rank", "pk")


def desk_rows(requests: list[Request], *, previous: CycleFigures | None) -> list[DeskRow]:
    """Each request with the studies its links point at and its area's use of the previous cycle."""
    studies = evidence.link_evidence(link for request in requests for link in request.evidence_links)
    rows = []
    for request in requests:
        linked = list({studies[link].label: studies[link] for link in request.evidence_links if link in studies}.values())
        rows.append(DeskRow(
            request=request, studies=linked, flag=scale_up_flag(request, linked),
            area_last_cycle=previous.area(request.area_id) if previous is not None else None,
        ))
    return rows


def filtered_requests(cycle: Cycle, *, data, user: User) -> tuple[DeskFilterForm, QuerySet[Request]]:
    """The filter form for the query string ``data`` and the requests it selects (none when it is invalid)."""
    form = DeskFilterForm(data, cycle=cycle, user=user)
    if not form.is_valid():
        return form, Request.objects.none()
    chosen = form.cleaned_data
    return form, desk_requests(
        cycle, user=user, area=chosen["area"], pool=chosen["pool"], stage=chosen["stage"],
        status=chosen["status"] or "open", requester=chosen["requester"], sort=chosen["sort"] or DEFAULT_SORT,
    )


def review_desk(cycle: Cycle, *, data, user: User) -> ReviewDesk:
    """The desk for ``cycle`` as the query string ``data`` asks (invalid filters: ``form.errors``, no rows)."""
    form, requests = filtered_requests(cycle, data=data, user=user)
    valid = not form.errors
    chosen = form.cleaned_data if valid else {}
    sort = chosen.get("sort") or DEFAULT_SORT
    page = Paginator(requests, PER_PAGE).get_page(chosen.get("page") or 1)
    previous = cycle_before(cycle)
    figures = cycle_figures(cycle, ideas=False)  # the panel shows pools and the org only
    filters = {name: data.get(name) for name in ("area", "pool", "stage", "status", "requester") if valid and data.get(name)}
    return ReviewDesk(
        cycle=cycle, form=form, page=page,
        rows=desk_rows(list(page.object_list), previous=cycle_figures(previous, ideas=False) if previous else None),
        panel=budget_panel(figures), sort=sort, previous=previous, filters=filters,
    )


def desk_panel(cycle: Cycle) -> BudgetPanel:
    return budget_panel(cycle_figures(cycle, ideas=False))
