"""Who may do what with compute. Services call these and raise ``PermissionDenied``."""
from django.conf import settings

from core.types import User
from ideas.models import Area
from ideas.permissions import is_member, is_pic


def is_reviewer(user: User) -> bool:
    """Reviewers are the members of one Django group (``reviewers`` unless configured otherwise)."""
    if not is_member(user):
        return False
    cached = getattr(user, "_compute_is_reviewer", None)
    if cached is None:
        cached = user.groups.filter(name=settings.FLIGHTDECK_COMPUTE_REVIEWER_GROUP).exists()
        user._compute_is_reviewer = cached
    return cached


def can_review(user: User, requester_id: int) -> bool:
    """Reviewers decide requests, never their own."""
    return is_reviewer(user) and user.pk != requester_id


def can_set_area_grant(user: User) -> bool:
    return is_reviewer(user)


def can_split_area(user: User, area: Area) -> bool:
    """The area's PIC distributes its grant across ideas; reviewers may too."""
    return is_pic(user, area) or is_reviewer(user)


def can_override_launch(user: User) -> bool:
    return is_reviewer(user)


def can_move_phase(user: User) -> bool:
    return is_member(user) and user.is_staff


def can_request(user: User) -> bool:
    return is_member(user)
