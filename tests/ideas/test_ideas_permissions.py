"""Permission matrix: role × own/other area × action, through the services (the pages and API call the same)."""
import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from ideas import permissions, services
from ideas.lifecycle import Status


def _move(user, idea, ctx):
    services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=user)


def _edit(user, idea, ctx):
    services.idea_update(idea=idea, by=user, changes={"title": "Edited title"})


def _hand_over(user, idea, ctx):
    services.area_hand_over(area=idea.area, to_user=ctx["member"], by=user)


def _comment(user, idea, ctx):
    services.comment_create(idea=idea, author=user, body="A comment")


def _watch(user, idea, ctx):
    services.idea_set_watching(idea=idea, user=user, watching=True)


def _submit(user, idea, ctx):
    services.idea_create(submitter=user, area=idea.area, title="Another idea", summary="Why not.")


def _create_area(user, idea, ctx):
    services.area_create(slug="new-area", name="New area", pic=ctx["member"], by=user)


ACTIONS = {"move": _move, "edit": _edit, "hand_over": _hand_over, "comment": _comment, "watch": _watch,
           "submit": _submit, "create_area": _create_area}

# Who may do what to an idea in `area` (whose PIC is `pic`); `other_pic` pilots a different area.
ALLOWED = {
    "staff": {"move", "edit", "hand_over", "comment", "watch", "submit", "create_area"},
    "pic": {"move", "hand_over", "comment", "watch", "submit"},
    "other_pic": {"comment", "watch", "submit"},
    "submitter": {"edit", "comment", "watch", "submit"},
    "member": {"comment", "watch", "submit"},
    "anonymous": set(),
}
CASES = [(role, action, action in allowed) for role, allowed in ALLOWED.items() for action in ACTIONS]


@pytest.mark.parametrize("role, action, allowed", CASES, ids=[f"{r}-{a}-{'yes' if ok else 'no'}" for r, a, ok in CASES])
def test_permission_matrix(request, idea, other_area, member, role, action, allowed):
    user = AnonymousUser() if role == "anonymous" else request.getfixturevalue(role)
    if allowed:
        ACTIONS[action](user, idea, {"member": member})
    else:
        with pytest.raises(PermissionDenied):
            ACTIONS[action](user, idea, {"member": member})


def test_the_page_buttons_follow_the_same_rules(idea, pic, other_pic, staff, submitter):
    assert [permissions.can_move_idea(u, idea) for u in (pic, other_pic, staff, submitter)] == [True, False, True, False]
