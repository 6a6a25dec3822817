"""Writes to the ideas domain. Keyword-only functions, one transaction each; side effects after commit.

Errors: django ``ValidationError`` keyed by field name, django ``PermissionDenied``, ``IllegalTransition``.
"""
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.text import slugify

from ideas import notifications, permissions, visibility
from ideas.errors import IllegalTransition
from ideas.lifecycle import DECISION_REQUIRED, Status, allowed_targets, forward_path
from ideas.models import (
    Activity,
    Area,
    AreaMembership,
    Comment,
    Decision,
    Idea,
    IdeaKeyCounter,
    PicHandover,
    Tag,
    Transition,
    format_idea_key,
)
from ideas.patches import validate_recipe_patch

MAX_TAGS = 12
EDITABLE_IDEA_FIELDS = ("title", "summary", "hypothesis", "area", "recipe_patch", "estimated_gpu_hours", "tags")


@dataclass(frozen=True)
class DecisionInput:
    """The decision record required to land or reject an idea."""

    summary: str
    links: Sequence[str] = field(default_factory=tuple)


# ---------------------------------------------------------------- areas


@transaction.atomic
def area_create(*, slug: str, name: str, description: str = "", pic: AbstractBaseUser, by: AbstractBaseUser,
                restricted: bool = False) -> Area:
    if not permissions.can_create_area(by):
        raise PermissionDenied("only staff may create areas")
    area = Area(slug=slug, name=name, description=description, pic=pic, restricted=restricted)
    area.full_clean()
    area.save()
    PicHandover.objects.create(area=area, from_user=None, to_user=pic, by=by, note="area created")
    return area


@transaction.atomic
def area_hand_over(*, area: Area, to_user: AbstractBaseUser, by: AbstractBaseUser, note: str = "") -> PicHandover:
    """Make ``to_user`` the area's PIC. Allowed for staff and the current PIC."""
    area = Area.objects.select_for_update().select_related("pic").get(pk=area.pk)
    if not permissions.can_hand_over(by, area):
        raise PermissionDenied(f"only staff or the current PIC of {area.name} may hand over")
    if not to_user.is_active:
        raise ValidationError({"to_user": f"{to_user} is not an active user"})
    if to_user.pk == area.pic_id:
        raise ValidationError({"to_user": f"{to_user} is already the PIC of {area.name}"})
    handover = PicHandover.objects.create(area=area, from_user=area.pic, to_user=to_user, by=by, note=note[:500])
    area.pic = to_user
    area.save(update_fields=["pic"])
    return handover


@transaction.atomic
def area_volunteer(*, area: Area, user: AbstractBaseUser) -> AreaMembership:
    if not permissions.is_member(user):
        raise PermissionDenied("sign in to volunteer")
    membership, _ = AreaMembership.objects.get_or_create(area=area, user=user)
    return membership


@transaction.atomic
def area_launcher_set(*, area: Area, user: AbstractBaseUser, can_launch: bool, by: AbstractBaseUser) -> AreaMembership:
    """The PIC (or staff) lets a volunteer launch, cancel and resume the area's studies, or takes it back."""
    if not (by.is_staff or area.pic_id == by.pk):
        raise PermissionDenied("only the area's PIC may decide who launches its studies")
    membership = AreaMembership.objects.select_for_update().filter(area=area, user=user).first()
    if membership is None:
        raise ValidationError({"user": f"{user} has not volunteered in {area.name}; only volunteers can launch"})
    membership.can_launch = can_launch
    membership.save(update_fields=["can_launch"])
    return membership


@transaction.atomic
def area_leave(*, area: Area, user: AbstractBaseUser) -> None:
    AreaMembership.objects.filter(area=area, user=user).delete()


# ---------------------------------------------------------------- ideas


def _normalise_tags(tags: Iterable[str]) -> list[str]:
    names = []
    for raw in tags:
        name = slugify(str(raw).strip())
        if not name:
            continue
        if len(name) > 40:
            raise ValidationError({"tags": f"tag {raw!r} is longer than 40 characters"})
        if name not in names:
            names.append(name)
    if len(names) > MAX_TAGS:
        raise ValidationError({"tags": f"at most {MAX_TAGS} tags, got {len(names)}"})
    return names


def _clean_idea(idea: Idea, *, exclude: list[str]) -> None:
    """Model field validation plus the recipe patch check, reported together, keyed by field."""
    errors: dict[str, list[str]] = {}
    try:
        # area and submitter arrive as model instances, so their existence needs no extra query.
        idea.full_clean(exclude=[*exclude, "area", "submitter"], validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        errors.update(error.message_dict)
    patch_errors = validate_recipe_patch(idea.recipe_patch)
    if patch_errors:
        errors["recipe_patch"] = patch_errors
    if errors:
        raise ValidationError(errors)


def _set_tags(idea: Idea, names: list[str]) -> None:
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=name) for name in names if name not in existing]
    Tag.objects.bulk_create(missing, ignore_conflicts=True)
    idea.tags.set(Tag.objects.filter(name__in=names))


def _next_idea_number() -> int:
    # The row lock serialises concurrent submissions; it is held until the caller's transaction ends,
    # so a rolled-back submission gives its number back and keys stay gap-free.
    counter, _ = IdeaKeyCounter.objects.select_for_update().get_or_create(pk=1)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def _record(idea: Idea, actor: AbstractBaseUser, kind: str, **links: Any) -> Activity:
    activity = Activity.objects.create(idea=idea, actor=actor, kind=kind, **links)
    notifications.publish(activity.pk)
    return activity


@transaction.atomic
def idea_create(
    *,
    submitter: AbstractBaseUser,
    area: Area,
    title: str,
    summary: str,
    hypothesis: str = "",
    recipe_patch: dict[str, Any] | None = None,
    estimated_gpu_hours: Decimal | float | None = None,
    tags: Iterable[str] = (),
) -> Idea:
    if not permissions.is_member(submitter):
        raise PermissionDenied("sign in to submit an idea")
    _require_visible_area(submitter, area)
    idea = Idea(
        area=area,
        submitter=submitter,
        title=title,
        summary=summary,
        hypothesis=hypothesis,
        recipe_patch={} if recipe_patch is None else recipe_patch,
        estimated_gpu_hours=estimated_gpu_hours,
    )
    tag_names = _normalise_tags(tags)
    _clean_idea(idea, exclude=["number", "key", "status"])
    idea.number = _next_idea_number()
    idea.key = format_idea_key(idea.number)
    idea.save()
    _set_tags(idea, tag_names)
    idea.watchers.add(submitter)
    _record(idea, submitter, Activity.Kind.SUBMITTED)
    return idea


def _require_visible_area(user: AbstractBaseUser, area: Area) -> None:
    """Ideas go only into areas the user can see; a restricted one reads as unknown, as on its pages."""
    if not visibility.can_view_area(user, area):
        raise ValidationError({"area": f"no area {area.slug!r}"})


@transaction.atomic
def idea_update(*, idea: Idea, by: AbstractBaseUser, changes: dict[str, Any]) -> Idea:
    """Apply ``changes`` (a subset of EDITABLE_IDEA_FIELDS) while the idea may still be edited."""
    unknown = sorted(set(changes) - set(EDITABLE_IDEA_FIELDS))
    if unknown:
        raise ValidationError({name: f"not editable; editable fields: {', '.join(EDITABLE_IDEA_FIELDS)}" for name in unknown})
    idea = Idea.objects.select_for_update().select_related("area").get(pk=idea.pk)
    if not permissions.can_edit_idea(by, idea):
        raise PermissionDenied("only the submitter may edit, and only while the idea is submitted")
    if "area" in changes:
        _require_visible_area(by, changes["area"])
    tag_names = _normalise_tags(changes["tags"]) if "tags" in changes else None
    for name, value in changes.items():
        if name != "tags":
            setattr(idea, name, {} if name == "recipe_patch" and value is None else value)
    _clean_idea(idea, exclude=["number", "key", "status"])
    idea.save()
    if tag_names is not None:
        _set_tags(idea, tag_names)
    _record(idea, by, Activity.Kind.EDITED)
    return idea


def _clean_decision(decision: DecisionInput | None, to_status: str) -> DecisionInput | None:
    if to_status not in DECISION_REQUIRED:
        return None
    if decision is None or not decision.summary.strip():
        raise ValidationError({"decision": f"moving to {to_status} needs a decision record: what the evidence showed"})
    validate_url = URLValidator(schemes=["http", "https"])
    for link in decision.links:
        try:
            validate_url(link)
        except ValidationError:
            raise ValidationError({"decision.links": f"{link!r} is not an http(s) URL"}) from None
    return decision


@transaction.atomic
def idea_transition(
    *, idea: Idea, to_status: str, by: AbstractBaseUser, note: str = "", decision: DecisionInput | None = None
) -> Transition:
    """Move ``idea`` to ``to_status``; only the area's PIC or staff, only along the lifecycle."""
    if to_status not in Status.values:
        raise ValidationError({"to": f"unknown status {to_status!r}; statuses: {', '.join(Status.values)}"})
    idea = Idea.objects.select_for_update().select_related("area").get(pk=idea.pk)
    if not permissions.can_move_idea(by, idea):
        raise PermissionDenied(f"only the PIC of {idea.area.name} or staff may move {idea.key}")
    if to_status not in allowed_targets(idea.status):
        raise IllegalTransition(idea.status, to_status, allowed_targets(idea.status))
    decision = _clean_decision(decision, to_status)
    decision_row = None
    if decision is not None:
        decision_row = Decision(
            idea=idea, outcome=to_status, summary=decision.summary, links=list(decision.links), decided_by=by
        )
        try:
            decision_row.full_clean(exclude=["idea", "decided_by"])
        except ValidationError as error:
            raise ValidationError({f"decision.{name}": msgs for name, msgs in error.message_dict.items()}) from None
        decision_row.save()
    transition = Transition.objects.create(
        idea=idea, from_status=idea.status, to_status=to_status, actor=by, note=note, decision=decision_row
    )
    idea.status = to_status
    idea.save(update_fields=["status", "updated_at"])
    _record(idea, by, Activity.Kind.TRANSITIONED, transition=transition)
    return transition


@transaction.atomic
def idea_advance(*, idea: Idea, to_status: str, by: AbstractBaseUser, reason: str) -> list[Transition]:
    """Move ``idea`` forward to ``to_status`` because work on it started (a study launched in experiments, which
    has already checked that ``by`` may launch it): one recorded transition per step, each with ``reason``.
    Ideas already there or further, and closed or parked ones, stay where they are."""
    idea = Idea.objects.select_for_update().get(pk=idea.pk)
    transitions = []
    for status in forward_path(idea.status, to_status):
        transitions.append(Transition.objects.create(idea=idea, from_status=idea.status, to_status=status, actor=by,
                                                     note=reason))
        idea.status = status
    if transitions:
        idea.save(update_fields=["status", "updated_at"])
        # One activity (and one notification to watchers) for the whole move; every step is in the transitions.
        _record(idea, by, Activity.Kind.TRANSITIONED, transition=transitions[-1])
    return transitions


@transaction.atomic
def comment_create(*, idea: Idea, author: AbstractBaseUser, body: str) -> Comment:
    if not permissions.is_member(author):
        raise PermissionDenied("sign in to comment")
    comment = Comment(idea=idea, author=author, body=body)
    comment.full_clean(exclude=["idea", "author"])
    comment.save()
    idea.watchers.add(author)
    _record(idea, author, Activity.Kind.COMMENTED, comment=comment)
    return comment


@transaction.atomic
def idea_set_watching(*, idea: Idea, user: AbstractBaseUser, watching: bool) -> None:
    if not permissions.is_member(user):
        raise PermissionDenied("sign in to watch ideas")
    if watching:
        idea.watchers.add(user)
    else:
        idea.watchers.remove(user)
