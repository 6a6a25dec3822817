"""Who may launch, cancel and resume experiments. Anyone may view them."""
from collections.abc import Iterable

from core.types import User
from ideas.models import Area, AreaMembership, Idea
from ideas.permissions import is_member


def can_launch_study(user: User, ideas: Iterable[Idea]) -> bool:
    """Staff, or someone who is PIC or volunteer of the area of every idea in the study."""
    if not is_member(user):
        return False
    if user.is_staff:
        return True
    area_ids = {idea.area_id for idea in ideas}
    if not area_ids:
        return False
    piloted = set(Area.objects.filter(pk__in=area_ids, pic=user).values_list("pk", flat=True))
    volunteered = set(AreaMembership.objects.filter(area_id__in=area_ids, user=user).values_list("area_id", flat=True))
    return area_ids <= (piloted | volunteered)


def can_manage_study(user: User, study) -> bool:
    """Cancel or resume a study's runs: whoever launched it, or anyone who could launch it."""
    if not is_member(user):
        return False
    return study.created_by_id == user.pk or can_launch_study(user, study.ideas.all())
