"""Who may do what. Every rule in one place; services call these and raise PermissionDenied."""
from core.types import User
from ideas.lifecycle import Status
from ideas.models import Area, Idea


def is_member(user: User) -> bool:
    """Anyone signed in (and active) may submit, comment, watch and volunteer."""
    return bool(user.is_authenticated and user.is_active)


def is_pic(user: User, area: Area) -> bool:
    return is_member(user) and area.pic_id == user.pk


def can_move_in_area(user: User, area: Area) -> bool:
    """Moving ideas through the lifecycle is the area PIC's job (staff may step in)."""
    return is_member(user) and (user.is_staff or is_pic(user, area))


def can_move_idea(user: User, idea: Idea) -> bool:
    return can_move_in_area(user, idea.area)


def can_edit_idea(user: User, idea: Idea) -> bool:
    """The submitter edits while the idea is still `submitted`; staff always."""
    if not is_member(user):
        return False
    return user.is_staff or (idea.submitter_id == user.pk and idea.status == Status.SUBMITTED)


def can_hand_over(user: User, area: Area) -> bool:
    return is_member(user) and (user.is_staff or is_pic(user, area))


def can_create_area(user: User) -> bool:
    return is_member(user) and user.is_staff
