"""Writes to the compute domain: keyword-only functions, one transaction each.

Errors: django ``ValidationError`` keyed by field name (→ 400), ``PermissionDenied`` (→ 403) and the
``compute.errors.ComputeConflict`` family (→ 409).

Locks are always taken top-down (org budget → area grant → idea grant) so concurrent writers cannot
deadlock; the tree invariant "children never sum past their parent" is checked while the parent row is
locked, so concurrent grants against one parent serialise on it.

Calling compute from the experiments app (the only entry points it needs)
--------------------------------------------------------------------------
``launch_estimate_gpu_hours(*, gpus, wall_seconds) -> Decimal`` and
``launch_estimate_from_throughput(*, gpus, tokens, tokens_per_second) -> Decimal``
    GPU-hours a launch is expected to use.

``launch_authorize(*, user, area, idea=None, pool, estimated_gpu_hours, launch_key, override=False,
override_reason="", now=None) -> LaunchDecision``
    Before a study/run starts. Checks the estimate against the remaining hours of the grant the launch
    runs under (the idea's grant in the current cycle and pool, else its area's) with that grant's row
    locked, and on success reserves the estimate as a hold under ``launch_key`` (for example the study or
    attempt key), so 50 concurrent launches cannot all spend the same hours. A refusal carries the
    numbers: ``requested``, ``remaining`` and ``can_grant_more`` (who to ask). ``override=True`` by a
    reviewer launches anyway and is logged on the hold; by anyone else it raises ``PermissionDenied``.
    Calling again with the same ``launch_key`` returns the first decision without reserving twice.

``usage_charge_segment(*, attempt_key, segment_start, segment_end, gpus, pool, area, idea=None,
launch_key=None) -> list[UsageEntry]``
    Charge ``gpus × wall-hours`` of one attempt segment (while it runs, and once more at its end).
    Idempotent per attempt: only the part of [segment_start, segment_end) not already charged for
    ``attempt_key`` is charged, so re-processing an attempt, or overlapping segments, never charge twice.
    A segment crossing a cycle boundary is split between the two cycles' grants. With ``launch_key`` the
    charge also draws down that launch's hold.

``launch_release(*, launch_key) -> None``
    When the launch is over (all its attempts ended): frees what is left of its hold.
"""
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from compute import notifications, permissions, selectors, visibility
from compute.cycles import Calendar, CycleWindow, Phase, phase_index
from compute.errors import AlreadyDecided, BelowChildren, CycleClosed, CycleNotOpen, ParentOverdrawn, RequestAlreadyOpen
from compute.models import (
    ZERO,
    Allocation,
    AllocationChange,
    AttemptLedger,
    Cycle,
    LaunchHold,
    Pool,
    Request,
    RequestRevision,
    Review,
    Stage,
    UsageEntry,
)
from ideas.models import Area, Idea

CENT = Decimal("0.01")
USAGE_PLACES = Decimal("0.0001")
MAX_JUSTIFICATION_CHARS = 20_000
MAX_EVIDENCE_LINKS = 20
MAX_LINK_CHARS = 500


def _hours(value: Decimal | float | int | str, *, field_name: str) -> Decimal:
    """A finite GPU-hour amount rounded to cents, or a ValidationError naming the field."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({field_name: f"must be a number of GPU-hours, got {value!r}"}) from None
    if not amount.is_finite():
        raise ValidationError({field_name: f"must be a finite number of GPU-hours, got {value!r}"})
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


# --- cycles -------------------------------------------------------------------------------------------


def org_budget_hours(*, pool: Pool, window: CycleWindow) -> Decimal:
    """Capacity × hours in the cycle × the target utilisation setting."""
    utilisation = Decimal(str(settings.FLIGHTDECK_COMPUTE_TARGET_UTILISATION))
    return (pool.gpu_count * window.hours * utilisation).quantize(CENT, rounding=ROUND_HALF_UP)


@transaction.atomic
def cycle_ensure(*, window: CycleWindow, now: datetime | None = None) -> Cycle:
    """The cycle for ``window``, created (in the phase its schedule says) with an org budget per pool.

    Idempotent: pools added since the cycle was created get their org budget on the next call. Unused
    hours never carry over: each cycle's budget comes from capacity alone.
    """
    now = now or timezone.now()
    cycle, _ = Cycle.objects.get_or_create(
        start=window.start, defaults={"end": window.end, "phase": Calendar.from_settings().phase_due(window, now)}
    )
    budgeted = set(cycle.allocations.filter(level=Allocation.Level.ORG).values_list("pool_id", flat=True))
    for pool in Pool.objects.exclude(pk__in=budgeted):
        budget = org_budget_hours(pool=pool, window=window)
        org = Allocation.objects.create(cycle=cycle, pool=pool, level=Allocation.Level.ORG, gpu_hours=budget)
        AllocationChange.objects.create(
            allocation=org, source=AllocationChange.Source.CYCLE_CREATED, before=ZERO, after=budget,
            note=f"{pool.gpu_count} GPUs × {window.hours} h × {settings.FLIGHTDECK_COMPUTE_TARGET_UTILISATION}",
        )
    return cycle


@dataclass(frozen=True)
class PhaseMove:
    cycle_id: int
    from_phase: str
    to_phase: str


@transaction.atomic
def cycle_schedule_advance(*, now: datetime | None = None) -> list[PhaseMove]:
    """Beat's job: make sure the current and the next cycle exist, and move every cycle forward to the
    phase its schedule says. Phases only move forward, so a cycle staff advanced early stays where it is."""
    now = now or timezone.now()
    calendar = Calendar.from_settings()
    current = calendar.window_containing(now)
    for window in (current, calendar.window_after(current)):
        cycle_ensure(window=window, now=now)
    moves = []
    for cycle in Cycle.objects.select_for_update().exclude(phase=Phase.CLOSED).order_by("start"):
        due = calendar.phase_due(cycle.window, now)
        if phase_index(due) > phase_index(cycle.phase):
            moves.append(PhaseMove(cycle.pk, cycle.phase, due))
            cycle.phase = due
            cycle.save(update_fields=["phase"])
    return moves


@transaction.atomic
def cycle_set_phase(*, cycle: Cycle, phase: str, actor: AbstractBaseUser) -> Cycle:
    """Staff move a cycle forward by hand (for example, publish early once every request is decided)."""
    if not permissions.can_move_phase(actor):
        raise PermissionDenied("only staff may move a cycle's phase by hand")
    if phase not in Phase.values:
        raise ValidationError({"phase": f"unknown phase {phase!r}; phases: {', '.join(Phase.values)}"})
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
    if phase_index(phase) <= phase_index(cycle.phase):
        raise ValidationError({"phase": f"cycles only move forward; {cycle} is already {cycle.phase}"})
    cycle.phase = phase
    cycle.save(update_fields=["phase"])
    return cycle


# --- the allocation tree --------------------------------------------------------------------------------


def _locked(allocation_id: int) -> Allocation:
    return Allocation.objects.select_for_update().get(pk=allocation_id)


def _org_for_update(cycle: Cycle, pool: Pool) -> Allocation:
    org_id = Allocation.objects.filter(cycle=cycle, pool=pool, level=Allocation.Level.ORG).values_list("pk", flat=True).first()
    if org_id is None:
        org_id = cycle_ensure(window=cycle.window).allocations.get(pool=pool, level=Allocation.Level.ORG).pk
    return _locked(org_id)


def _child_for_update(parent: Allocation, *, area: Area, idea: Idea | None) -> Allocation:
    """The area or idea grant under the locked ``parent``, created empty if missing (safe: creating a child
    always holds the parent's lock, so two writers cannot both create it)."""
    level = Allocation.Level.IDEA if idea is not None else Allocation.Level.AREA
    child, _ = Allocation.objects.get_or_create(
        cycle_id=parent.cycle_id, pool_id=parent.pool_id, level=level, area=area, idea=idea,
        defaults={"parent": parent},
    )
    return _locked(child.pk)


def _set_amount(allocation: Allocation, after: Decimal, *, actor, source: str, note: str = "") -> AllocationChange:
    change = AllocationChange.objects.create(
        allocation=allocation, actor=actor, source=source, before=allocation.gpu_hours, after=after, note=note
    )
    allocation.gpu_hours = after
    allocation.save(update_fields=["gpu_hours", "updated_at"])
    return change


def _require_room(parent: Allocation, extra: Decimal, *, what: str) -> None:
    room = selectors.allocation_unassigned(parent)
    if extra > room:
        label = selectors.allocation_label(parent)
        raise ParentOverdrawn(
            f"{what} would take {extra} GPU-h from {label}, which has only {room} GPU-h left to hand out",
            parent_remaining=room,
            requested=extra,
            parent=label,
        )


def _require_not_closed(cycle: Cycle) -> None:
    if cycle.phase == Phase.CLOSED:
        raise CycleClosed(f"cycle {cycle} is closed; its grants are history", cycle=cycle.pk)


@transaction.atomic
def allocation_set(
    *, cycle: Cycle, pool: Pool, area: Area, idea: Idea | None = None, gpu_hours, actor: AbstractBaseUser, note: str = ""
) -> Allocation:
    """Set an area grant (reviewers) or an idea grant inside its area's grant (the area's PIC or reviewers)."""
    amount = _hours(gpu_hours, field_name="gpu_hours")
    if amount < 0:
        raise ValidationError({"gpu_hours": f"must be zero or more, got {amount}"})
    if idea is not None and idea.area_id != area.pk:
        raise ValidationError({"idea": f"{idea.key} belongs to another area than {area.name}"})
    allowed = permissions.can_split_area(actor, area) if idea else permissions.can_set_area_grant(actor)
    if not allowed:
        who = f"the PIC of {area.name} or a reviewer" if idea else "a reviewer"
        raise PermissionDenied(f"only {who} may set this grant")
    cycle = Cycle.objects.get(pk=cycle.pk)
    _require_not_closed(cycle)
    org = _org_for_update(cycle, pool)
    area_grant = _child_for_update(org, area=area, idea=None)
    if idea is None:
        target, parent = area_grant, org
    else:
        target, parent = _child_for_update(area_grant, area=area, idea=idea), area_grant
    children = selectors.allocation_children_total(target)
    if amount < children:
        raise BelowChildren(
            f"{selectors.allocation_label(target)} has already handed {children} GPU-h to its ideas; "
            f"it cannot shrink to {amount}",
            children_total=children,
        )
    _require_room(parent, amount - target.gpu_hours, what=f"raising {selectors.allocation_label(target)} to {amount} GPU-h")
    _set_amount(target, amount, actor=actor, source=AllocationChange.Source.SPLIT, note=note)
    return target


# --- requests and reviews -------------------------------------------------------------------------------


def _clean_links(links: Iterable[str]) -> list[str]:
    links = list(links)
    if len(links) > MAX_EVIDENCE_LINKS:
        raise ValidationError({"evidence_links": f"at most {MAX_EVIDENCE_LINKS} links, got {len(links)}"})
    validate_url = URLValidator(schemes=["http", "https"])
    cleaned = []
    for link in links:
        if not isinstance(link, str) or not link.strip() or len(link) > MAX_LINK_CHARS:
            raise ValidationError({"evidence_links": f"each link is a non-empty string of at most {MAX_LINK_CHARS} characters"})
        link = link.strip()
        if link.startswith("/") and not link.startswith("//"):
            cleaned.append(link)  # a page of this site: a run, a study, a prior grant
            continue
        try:
            validate_url(link)
        except ValidationError:
            raise ValidationError({"evidence_links": f"{link!r} is neither an http(s) URL nor a path on this site"}) from None
        cleaned.append(link)
    return cleaned


def _next_opening(now: datetime) -> str:
    open_cycle = Cycle.objects.filter(phase=Phase.OPEN).order_by("start").first()
    if open_cycle is not None:
        return f"cycle {open_cycle} (id {open_cycle.pk}) is open for requests now"
    calendar = Calendar.from_settings()
    window = calendar.window_after(calendar.window_containing(now))
    while calendar.opens_at(window) <= now:
        window = calendar.window_after(window)
    opens = timezone.localtime(calendar.opens_at(window))
    return f"the next cycle opens for requests on {opens:%a %d %b %Y %H:%M %Z}"


def _clean_request_fields(*, cycle: Cycle, pool: Pool, area: Area, idea: Idea | None, gpu_hours, justification: str, stage: str) -> Decimal:
    amount = _hours(gpu_hours, field_name="gpu_hours")
    ceiling = (pool.gpu_count * cycle.window.hours).quantize(CENT)
    if amount <= 0:
        raise ValidationError({"gpu_hours": f"must be more than 0, got {amount}"})
    if amount > ceiling:
        raise ValidationError(
            {"gpu_hours": f"{amount} is more than all of pool {pool.name} for the whole cycle ({ceiling} GPU-h)"}
        )
    if stage not in Stage.values:
        raise ValidationError({"stage": f"unknown stage {stage!r}; stages: {', '.join(Stage.values)}"})
    if not justification or not justification.strip():
        raise ValidationError({"justification": "say why these hours are needed and what the evidence shows"})
    if len(justification) > MAX_JUSTIFICATION_CHARS:
        raise ValidationError({"justification": f"at most {MAX_JUSTIFICATION_CHARS} characters"})
    if idea is not None and idea.area_id != area.pk:
        raise ValidationError({"idea": f"{idea.key} belongs to another area, not {area.slug}"})
    return amount


def _already_open_message(existing: Request, *, can_amend: bool) -> str:
    asked = f"{existing.requester.get_username()} asked for {existing.gpu_hours} GPU-h on {timezone.localtime(existing.created_at):%d %b}"
    said = (
        f"{existing.target_label} already has an open request for {existing.pool.name} in this cycle "
        f"(request #{existing.pk}: {asked}). There can be one open request per area or idea and pool at a time, "
    )
    if can_amend:
        return said + f"so amend request #{existing.pk} with your hours and reasons instead; its current text is kept in its history."
    return said + (
        f"and only {existing.requester.get_username()} or the PIC of {existing.area.name} "
        f"({existing.area.pic.get_username()}) may amend it: ask them to add your hours, or request for one of the area's ideas."
    )


@transaction.atomic
def request_submit(
    *,
    requester: AbstractBaseUser,
    cycle: Cycle,
    pool: Pool,
    area: Area,
    idea: Idea | None = None,
    gpu_hours,
    justification: str,
    stage: str,
    evidence_links: Sequence[str] = (),
    open_request: str = "amend",
    now: datetime | None = None,
) -> tuple[Request, bool]:
    """Open a request, or amend the open one for the same (cycle, pool, target) keeping its old text.

    Returns ``(request, created)``. Only while the cycle is ``open``. With ``open_request="refuse"`` (the
    page's new-request form, until the person chose to amend) an open request for the target is not amended
    but answered with ``RequestAlreadyOpen``, which says so in their terms and whether they may amend it.
    """
    if not permissions.can_request(requester):
        raise PermissionDenied("sign in to request compute")
    if not visibility.can_view_area_compute(requester, area):  # as unknown as on the area's pages
        raise ValidationError({"area": f"no area {area.slug!r}"})
    amount = _clean_request_fields(
        cycle=cycle, pool=pool, area=area, idea=idea, gpu_hours=gpu_hours, justification=justification, stage=stage
    )
    links = _clean_links(evidence_links)
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)  # a phase move waits for us, and we for it
    if cycle.phase != Phase.OPEN:
        raise CycleNotOpen(
            f"cycle {cycle} is {cycle.get_phase_display().lower()}, not open for requests; "
            f"{_next_opening(now or timezone.now())}",
            cycle=cycle.pk,
            phase=cycle.phase,
        )
    existing = (
        Request.objects.select_for_update(of=("self",)).select_related("requester", "pool", "area__pic", "idea")
        .filter(cycle=cycle, pool=pool, area=area, idea=idea, status=Request.Status.OPEN)
        .first()
    )
    if existing is None:
        request = Request.objects.create(
            cycle=cycle, pool=pool, area=area, idea=idea, requester=requester, gpu_hours=amount,
            justification=justification, evidence_links=links, stage=stage,
        )
        return request, True
    can_amend = existing.requester_id == requester.pk or permissions.is_pic(requester, area)
    if open_request != "amend" or not can_amend:
        raise RequestAlreadyOpen(_already_open_message(existing, can_amend=can_amend), request=existing.pk, can_amend=can_amend)
    RequestRevision.objects.create(
        request=existing, editor=requester, gpu_hours=existing.gpu_hours, justification=existing.justification,
        evidence_links=existing.evidence_links, stage=existing.stage,
    )
    existing.gpu_hours, existing.justification, existing.evidence_links, existing.stage = amount, justification, links, stage
    existing.save(update_fields=["gpu_hours", "justification", "evidence_links", "stage", "updated_at"])
    return existing, False


def _granted_for(decision: str, requested: Decimal, gpu_hours, comment: str) -> Decimal:
    if decision not in Review.Decision.values:
        raise ValidationError({"decision": f"unknown decision {decision!r}; decisions: {', '.join(Review.Decision.values)}"})
    if decision != Review.Decision.APPROVE and not comment.strip():
        raise ValidationError({"comment": f"say why you {decision} the request"})
    if decision == Review.Decision.APPROVE:
        return requested
    if decision == Review.Decision.REFUSE:
        return ZERO
    if gpu_hours is None:
        raise ValidationError({"gpu_hours": "a trim needs the GPU-hours to grant"})
    amount = _hours(gpu_hours, field_name="gpu_hours")
    if not ZERO < amount < requested:
        raise ValidationError({"gpu_hours": f"a trim grants more than 0 and less than the {requested} requested, got {amount}"})
    return amount


@transaction.atomic
def request_review(
    *, request: Request, reviewer: AbstractBaseUser, decision: str, gpu_hours=None, comment: str = ""
) -> Review:
    """Approve, trim or refuse an open request; the granted hours are added to the target's grant.

    An idea request grows both the area grant (out of the org budget) and the idea grant, so the
    reviewer's decision does not eat into hours the PIC already planned for other ideas.
    """
    request = Request.objects.select_for_update(of=("self",)).select_related("cycle", "pool", "area", "idea").get(pk=request.pk)
    if not permissions.is_reviewer(reviewer):
        raise PermissionDenied(f"only members of the {settings.FLIGHTDECK_COMPUTE_REVIEWER_GROUP!r} group review requests")
    if not permissions.can_review(reviewer, request.requester_id):
        raise PermissionDenied("nobody reviews their own request")
    if request.status != Request.Status.OPEN:
        raise AlreadyDecided(f"request #{request.pk} was already {request.status}; submit a new request to ask again")
    _require_not_closed(request.cycle)
    granted = _granted_for(decision, request.gpu_hours, gpu_hours, comment)
    org = _org_for_update(request.cycle, request.pool)
    before = selectors.grant_hours(request.cycle, request.pool, area=request.area, idea=request.idea)
    after = before
    if granted > 0:
        _require_room(org, granted, what=f"granting request #{request.pk}")
        note = f"request #{request.pk} {decision}d"
        area_grant = _child_for_update(org, area=request.area, idea=None)
        _set_amount(area_grant, area_grant.gpu_hours + granted, actor=reviewer, source=AllocationChange.Source.REVIEW, note=note)
        if request.idea is not None:
            idea_grant = _child_for_update(area_grant, area=request.area, idea=request.idea)
            _set_amount(idea_grant, idea_grant.gpu_hours + granted, actor=reviewer, source=AllocationChange.Source.REVIEW, note=note)
        after = before + granted
    request.status = {
        Review.Decision.APPROVE: Request.Status.APPROVED,
        Review.Decision.TRIM: Request.Status.TRIMMED,
        Review.Decision.REFUSE: Request.Status.REFUSED,
    }[decision]
    request.granted_hours = granted
    request.save(update_fields=["status", "granted_hours", "updated_at"])
    review = Review.objects.create(
        request=request, reviewer=reviewer, decision=decision, requested_hours=request.gpu_hours,
        granted_hours=granted, grant_before=before, grant_after=after, comment=comment,
    )
    notifications.publish_request_reviewed(review.pk)
    return review


@transaction.atomic
def requests_approve_pilots(*, cycle: Cycle, request_ids: Sequence[int], reviewer: AbstractBaseUser) -> list[Review]:
    """Approve several open pilot requests of ``cycle`` at once (the reviewer's bulk action).

    All or nothing: if any selected request is not an open pilot of this cycle, or the pilots together ask a
    pool for more than its org budget has left to grant, nothing is approved and the error says which and by
    how much. Each approval is then an ordinary ``request_review``.
    """
    ids = sorted(set(request_ids))
    if not ids:
        raise ValidationError({"requests": "select at least one pilot request to approve"})
    requests = list(Request.objects.select_for_update(of=("self",)).filter(cycle=cycle, pk__in=ids).select_related("pool", "area", "idea").order_by("pk"))
    missing = sorted(set(ids) - {request.pk for request in requests})
    if missing:
        raise ValidationError({"requests": f"no request {', '.join(f'#{pk}' for pk in missing)} in cycle {cycle}"})
    not_pilots = [f"#{r.pk} ({r.get_stage_display().lower()})" for r in requests if r.stage != Stage.PILOT]
    if not_pilots:
        raise ValidationError({"requests": f"bulk approval is for pilots only; decide {', '.join(not_pilots)} one by one"})
    decided = [f"#{r.pk} ({r.status})" for r in requests if r.status != Request.Status.OPEN]
    if decided:
        raise AlreadyDecided(f"already decided: {', '.join(decided)}; leave them out of the selection")
    asked: dict[int, Decimal] = {}
    pools = {}
    for request in requests:
        asked[request.pool_id] = asked.get(request.pool_id, ZERO) + request.gpu_hours
        pools[request.pool_id] = request.pool
    for pool_id in sorted(asked, key=lambda pk: pools[pk].name):  # org rows locked in one order: no deadlock
        org = _org_for_update(cycle, pools[pool_id])
        _require_room(org, asked[pool_id], what=f"approving the {sum(r.pool_id == pool_id for r in requests)} selected pilots")
    return [request_review(request=request, reviewer=reviewer, decision=Review.Decision.APPROVE) for request in requests]


# --- launches and usage ---------------------------------------------------------------------------------


def launch_estimate_gpu_hours(*, gpus: int, wall_seconds: float) -> Decimal:
    """GPU-hours of ``gpus`` GPUs busy for ``wall_seconds``."""
    if gpus <= 0 or wall_seconds < 0:
        raise ValueError(f"gpus must be positive and wall_seconds non-negative, got gpus={gpus}, wall_seconds={wall_seconds}")
    return (Decimal(gpus) * Decimal(str(wall_seconds)) / Decimal(3600)).quantize(CENT, rounding=ROUND_HALF_UP)


def launch_estimate_from_throughput(*, gpus: int, tokens: int, tokens_per_second: float) -> Decimal:
    """GPU-hours to process ``tokens`` at a measured ``tokens_per_second`` (of the whole job, all GPUs)."""
    if tokens_per_second <= 0:
        raise ValueError(f"tokens_per_second must be positive, got {tokens_per_second}")
    return launch_estimate_gpu_hours(gpus=gpus, wall_seconds=tokens / tokens_per_second)


@dataclass(frozen=True)
class LaunchDecision:
    allowed: bool
    requested: Decimal
    remaining: Decimal
    grant: str
    can_grant_more: list[str] = field(default_factory=list)
    overridden_by: str = ""
    hold_id: int | None = None

    @property
    def message(self) -> str:
        if self.allowed and self.overridden_by:
            return f"launched over budget on {self.grant}: override by {self.overridden_by}"
        if self.allowed:
            return f"reserved {self.requested} GPU-h on {self.grant} ({self.remaining} GPU-h were left)"
        who = ", ".join(self.can_grant_more) or "a reviewer"
        return (
            f"refused: this launch needs {self.requested} GPU-h but {self.grant} has {self.remaining} GPU-h left; "
            f"ask {who} for more"
        )


def _current_cycle(now: datetime) -> Cycle:
    return cycle_ensure(window=Calendar.from_settings().window_containing(now), now=now)


def _pool_named(pool: Pool | str) -> Pool:
    if isinstance(pool, Pool):
        return pool
    try:
        return Pool.objects.get(name=pool)
    except Pool.DoesNotExist:
        names = ", ".join(Pool.objects.values_list("name", flat=True))
        raise ValidationError({"pool": f"unknown pool {pool!r}; pools: {names}"}) from None


def _launch_grant(cycle: Cycle, pool: Pool, area: Area, idea: Idea | None) -> Allocation:
    """The locked grant a launch runs under: the idea's grant if it has one, else its area's."""
    if idea is not None:
        idea_grant = Allocation.objects.filter(cycle=cycle, pool=pool, level=Allocation.Level.IDEA, idea=idea).first()
        if idea_grant is not None:
            return _locked(idea_grant.pk)
    area_grant = Allocation.objects.filter(cycle=cycle, pool=pool, level=Allocation.Level.AREA, area=area).first()
    if area_grant is not None:
        return _locked(area_grant.pk)
    return _child_for_update(_org_for_update(cycle, pool), area=area, idea=None)


def _decision_from_hold(hold: LaunchHold) -> LaunchDecision:
    return LaunchDecision(
        allowed=True, requested=hold.estimated_hours, remaining=hold.remaining_at_launch,
        grant=selectors.allocation_label(hold.allocation),
        overridden_by=hold.overridden_by.get_username() if hold.overridden_by_id else "", hold_id=hold.pk,
    )


@transaction.atomic
def launch_authorize(
    *,
    user: AbstractBaseUser,
    area: Area,
    idea: Idea | None = None,
    pool: Pool | str,
    estimated_gpu_hours,
    launch_key: str,
    override: bool = False,
    override_reason: str = "",
    now: datetime | None = None,
) -> LaunchDecision:
    """Reserve ``estimated_gpu_hours`` on the grant this launch runs under, or refuse with the numbers."""
    estimate = _hours(estimated_gpu_hours, field_name="estimated_gpu_hours")
    if estimate < 0:
        raise ValidationError({"estimated_gpu_hours": f"must be zero or more, got {estimate}"})
    if not launch_key:
        raise ValidationError({"launch_key": "required: the study or attempt key the launch is charged under"})
    if override and not permissions.can_override_launch(user):
        raise PermissionDenied("only reviewers may launch over a grant's budget")
    pool = _pool_named(pool)
    cycle = _current_cycle(now or timezone.now())
    grant = _launch_grant(cycle, pool, area, idea)
    existing = LaunchHold.objects.select_related("allocation__area", "allocation__idea", "allocation__pool", "overridden_by").filter(launch_key=launch_key).first()
    if existing is not None:
        return _decision_from_hold(existing)
    remaining = selectors.allocation_launchable(grant) if cycle.phase == Phase.PUBLISHED else ZERO
    label = selectors.allocation_label(grant)
    if estimate > remaining and not override:
        return LaunchDecision(
            allowed=False, requested=estimate, remaining=remaining, grant=label,
            can_grant_more=selectors.who_can_grant_more(grant),
        )
    hold = LaunchHold.objects.create(
        launch_key=launch_key, allocation=grant, requested_by=user, estimated_hours=estimate,
        outstanding_hours=estimate, remaining_at_launch=remaining,
        overridden_by=user if estimate > remaining else None,
        override_reason=override_reason if estimate > remaining else "",
    )
    return LaunchDecision(
        allowed=True, requested=estimate, remaining=remaining, grant=label,
        overridden_by=user.get_username() if hold.overridden_by_id else "", hold_id=hold.pk,
    )


def launch_check(*, area: Area, idea: Idea | None = None, pool: Pool | str, estimated_gpu_hours,
                 now: datetime | None = None) -> LaunchDecision:
    """What ``launch_authorize`` would decide now, without reserving, locking or creating anything (the
    launch preview). A grant that does not exist yet has nothing left."""
    estimate = _hours(estimated_gpu_hours, field_name="estimated_gpu_hours")
    pool = _pool_named(pool)
    window = Calendar.from_settings().window_containing(now or timezone.now())
    cycle = Cycle.objects.filter(start=window.start).first()
    grants = Allocation.objects.none() if cycle is None else Allocation.objects.filter(cycle=cycle, pool=pool)
    grant = (grants.filter(level=Allocation.Level.IDEA, idea=idea).first() if idea is not None else None) or \
        grants.filter(level=Allocation.Level.AREA, area=area).first()
    if grant is None:
        return LaunchDecision(allowed=estimate <= 0, requested=estimate, remaining=ZERO,
                              grant=f"the {area.name} area grant on {pool.name} (none this cycle)",
                              can_grant_more=selectors.reviewer_names())
    remaining = selectors.allocation_launchable(grant) if cycle.phase == Phase.PUBLISHED else ZERO
    return LaunchDecision(allowed=estimate <= remaining, requested=estimate, remaining=remaining,
                          grant=selectors.allocation_label(grant), can_grant_more=selectors.who_can_grant_more(grant))


@transaction.atomic
def launch_release(*, launch_key: str, now: datetime | None = None) -> None:
    """Free what is left of a launch's hold (its attempts have all ended). Idempotent."""
    LaunchHold.objects.filter(launch_key=launch_key, released_at__isnull=True).update(
        outstanding_hours=ZERO, released_at=now or timezone.now()
    )


def _uncovered(start: datetime, end: datetime, covered: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) outside every interval in ``covered``."""
    pieces = []
    cursor = start
    for covered_start, covered_end in sorted(covered):
        if covered_end <= cursor or covered_start >= end:
            continue
        if covered_start > cursor:
            pieces.append((cursor, covered_start))
        cursor = max(cursor, covered_end)
        if cursor >= end:
            break
    if cursor < end:
        pieces.append((cursor, end))
    return pieces


def _split_by_cycle(start: datetime, end: datetime, calendar: Calendar) -> list[tuple[CycleWindow, datetime, datetime]]:
    parts = []
    while start < end:
        window = calendar.window_containing(start)
        part_end = min(end, window.end)
        parts.append((window, start, part_end))
        start = part_end
    return parts


@transaction.atomic
def usage_charge_segment(
    *,
    attempt_key: str,
    segment_start: datetime,
    segment_end: datetime,
    gpus: int,
    pool: Pool | str,
    area: Area,
    idea: Idea | None = None,
    launch_key: str | None = None,
) -> list[UsageEntry]:
    """Charge the not-yet-charged part of one attempt segment; returns the new entries (empty if none)."""
    if timezone.is_naive(segment_start) or timezone.is_naive(segment_end):
        raise ValidationError({"segment_start": "segment times must be timezone-aware"})
    if segment_end <= segment_start:
        raise ValidationError({"segment_end": f"must be after segment_start ({segment_start.isoformat()})"})
    if gpus <= 0:
        raise ValidationError({"gpus": f"must be positive, got {gpus}"})
    if idea is not None and idea.area_id != area.pk:
        raise ValidationError({"idea": f"{idea.key} belongs to another area than {area.slug}"})
    pool = _pool_named(pool)
    AttemptLedger.objects.get_or_create(attempt_key=attempt_key)
    AttemptLedger.objects.select_for_update().get(attempt_key=attempt_key)  # serialises this attempt's charges
    covered = UsageEntry.objects.filter(attempt_key=attempt_key).values_list("segment_start", "segment_end")
    calendar = Calendar.from_settings()
    entries = []
    for piece_start, piece_end in _uncovered(segment_start, segment_end, covered):
        for window, start, end in _split_by_cycle(piece_start, piece_end, calendar):
            cycle = cycle_ensure(window=window)
            grant = (
                Allocation.objects.filter(cycle=cycle, pool=pool, level=Allocation.Level.IDEA, idea=idea).first()
                if idea is not None
                else None
            ) or _child_for_update(_org_for_update(cycle, pool), area=area, idea=None)
            hours = (Decimal(gpus) * Decimal(int((end - start).total_seconds())) / Decimal(3600)).quantize(USAGE_PLACES)
            entries.append(
                UsageEntry.objects.create(
                    cycle=cycle, pool=pool, area=area, idea=idea, allocation=grant, attempt_key=attempt_key,
                    segment_start=start, segment_end=end, gpus=gpus, gpu_hours=hours,
                )
            )
    if launch_key and entries:
        _draw_down_hold(launch_key, sum((entry.gpu_hours for entry in entries), ZERO))
    return entries


def _draw_down_hold(launch_key: str, charged: Decimal) -> None:
    hold = LaunchHold.objects.select_for_update().filter(launch_key=launch_key, released_at__isnull=True).first()
    if hold is not None:
        hold.outstanding_hours = max(ZERO, hold.outstanding_hours - charged.quantize(CENT, rounding=ROUND_HALF_UP))
        hold.save(update_fields=["outstanding_hours"])

