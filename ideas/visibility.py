"""Who may see what. The one reading policy of the site; every selector and object fetch goes through it.

Areas are readable by every signed-in member unless ``Area.restricted`` is set. Everything of a restricted
area — its ideas and what hangs off them, the studies that include any of its ideas, their runs, and the
area's compute requests and grants — is visible only to staff, the area's PIC and its members (volunteers);
compute adds the reviewers (``compute.visibility``). Everyone else, anonymous visitors included, is told
"not found", so a restricted object's existence is not revealed either.

Querysets are narrowed with one SQL subquery (``hidden_areas``), never a query per row, so list pages keep
their pinned query counts.
"""
from django.db.models import Exists, OuterRef, Q, QuerySet

from core.types import User
from ideas.models import Area, AreaMembership, Idea


def sees_everything(user: User) -> bool:
    """Staff read everything; inactive accounts count as anonymous."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def hidden_areas(user: User) -> QuerySet[Area]:
    """The restricted areas ``user`` may not see, as a lazy queryset (used as a subquery)."""
    restricted = Area.objects.filter(restricted=True)
    if not (user.is_authenticated and user.is_active):
        return restricted
    member = AreaMembership.objects.filter(area=OuterRef("pk"), user_id=user.pk)
    return restricted.exclude(pic_id=user.pk).exclude(Exists(member))


def area_q(user: User, path: str = "area") -> Q:
    """A filter keeping rows whose area (reached by ``path``, e.g. ``"idea__area"``) ``user`` may see.
    Empty for staff, so their queries carry no subquery at all. A nullable ``path`` keeps rows without an area."""
    if sees_everything(user):
        return Q()
    return ~Q(**{f"{path}__in": hidden_areas(user)})


def visible_areas(user: User) -> QuerySet[Area]:
    return Area.objects.filter(area_q(user, "pk"))


def visible_ideas(user: User) -> QuerySet[Idea]:
    return Idea.objects.filter(area_q(user))


def can_view_area(user: User, area: Area) -> bool:
    """One query at most (membership), none for unrestricted areas, staff and the PIC."""
    if not area.restricted or sees_everything(user):
        return True
    if not (user.is_authenticated and user.is_active):
        return False
    return area.pic_id == user.pk or AreaMembership.objects.filter(area=area, user_id=user.pk).exists()


def can_view_idea(user: User, idea: Idea) -> bool:
    return can_view_area(user, idea.area)
