"""Which compute rows a user may see: ``ideas.visibility`` plus the reviewers, who must see every request
and grant to review them. Rows of a restricted area (requests, grants, usage) are hidden from everyone else;
org-level rows (the org budget of a pool) belong to no area and stay visible."""
from django.db.models import Q, QuerySet

from compute.models import Allocation, Request, UsageEntry
from compute.permissions import is_reviewer
from core.types import User
from ideas.models import Area
from ideas.visibility import area_q, can_view_area, sees_everything, visible_areas


def sees_all_compute(user: User) -> bool:
    return sees_everything(user) or is_reviewer(user)


def compute_q(user: User, area_path: str = "area", idea_path: str = "idea") -> Q:
    """A filter keeping rows whose area and idea (each reached by its path; either may be null) ``user`` may see."""
    if sees_all_compute(user):
        return Q()
    return area_q(user, area_path) & area_q(user, f"{idea_path}__area")


def visible_requests(user: User) -> QuerySet[Request]:
    return Request.objects.filter(compute_q(user))


def visible_allocations(user: User) -> QuerySet[Allocation]:
    return Allocation.objects.filter(compute_q(user))


def visible_usage(user: User) -> QuerySet[UsageEntry]:
    return UsageEntry.objects.filter(compute_q(user))


def visible_compute_areas(user: User) -> QuerySet[Area]:
    return Area.objects.all() if sees_all_compute(user) else visible_areas(user)


def can_view_area_compute(user: User, area: Area) -> bool:
    return sees_all_compute(user) or can_view_area(user, area)
