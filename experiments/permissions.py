"""Who may launch, cancel and resume experiments. Anyone may view them."""
from collections.abc import Iterable

from core.types import User
from ideas.models import Area, AreaMembership, Idea
from ideas.permissions import is_member


def can_launch_study(user: User, ideas: Iterable[Idea]) -> bool:
    """Staff, or someone who is PIC or a launcher (a volunteer the PIC allowed to launch) of the area of every
    idea in the study. Volunteering alone is not enough: launching spends the area's GPU budget."""
    if not is_member(user):
        return False
    if user.is_staff:
        return True
    area_ids = {idea.area_id for idea in ideas}
    if not area_ids:
        return False
    piloted = set(Area.objects.filter(pk__in=area_ids, pic=user).values_list("pk", flat=True))
    launcher_of = set(AreaMembership.objects.filter(area_id__in=area_ids, user=user, can_launch=True)
                      .values_list("area_id", flat=True))
    return area_ids <= (piloted | launcher_of)


def launchable_area_ids(user: User) -> set[int] | None:
    """The areas whose ideas ``user`` may launch studies of (PIC or volunteer); None: every area (staff)."""
    if not is_member(user):
        return set()
    if user.is_staff:
        return None
    piloted = Area.objects.filter(pic=user).values_list("pk", flat=True)
    return set(piloted) | set(AreaMembership.objects.filter(user=user).values_list("area_id", flat=True))


def can_manage_study(user: User, study) -> bool:
    """Cancel or resume a study's runs: whoever launched it (always, even after losing the role), or anyone
    who could launch it."""
    if not is_member(user):
        return False
    return study.created_by_id == user.pk or can_launch_study(user, study.ideas.all())
