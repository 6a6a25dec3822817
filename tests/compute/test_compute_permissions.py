"""Who may review, split, override and move phases: the permission matrix, through services and HTTP."""
import pytest
from django.core.exceptions import PermissionDenied

from compute import services
from compute.cycles import Phase
from compute.errors import RequestAlreadyOpen
from compute.models import AllocationChange, Review


@pytest.fixture
def open_request(open_cycle, pool, area, member):
    request, _ = services.request_submit(
        requester=member, cycle=open_cycle, pool=pool, area=area, gpu_hours=100, justification="pilot", stage="pilot"
    )
    return request


@pytest.mark.parametrize(
    ("who", "allowed"),
    [("reviewer", True), ("member", False), ("pic", False), ("staff", False)],
)
def test_only_reviewers_review(request, open_request, who, allowed):
    user = request.getfixturevalue(who)
    if who == "member":  # the member wrote the request; another plain member is the outsider here
        user = request.getfixturevalue("make_user")("outsider")
    if allowed:
        review = services.request_review(request=open_request, reviewer=user, decision="approve")
        assert review.reviewer == user and review.granted_hours == 100
    else:
        with pytest.raises(PermissionDenied, match="reviewers"):
            services.request_review(request=open_request, reviewer=user, decision="approve")
        assert not Review.objects.exists()


def test_nobody_reviews_their_own_request(open_cycle, pool, area, reviewer, client):
    own, _ = services.request_submit(requester=reviewer, cycle=open_cycle, pool=pool, area=area, gpu_hours=50, justification="mine", stage="pilot")
    with pytest.raises(PermissionDenied, match="own request"):
        services.request_review(request=own, reviewer=reviewer, decision="approve")
    client.force_login(reviewer)
    response = client.post(f"/api/v1/requests/{own.pk}/review/", {"decision": "approve"}, content_type="application/json")
    assert response.status_code == 403


def test_a_non_reviewer_gets_403_from_the_api_and_the_queue(client, open_request, make_user):
    outsider = make_user("outsider")
    client.force_login(outsider)
    assert client.post(f"/api/v1/requests/{open_request.pk}/review/", {"decision": "approve"}, content_type="application/json").status_code == 403
    assert client.get(f"/compute/cycles/{open_request.cycle_id}/review/").status_code == 403
    assert client.post(f"/compute/requests/{open_request.pk}/review/", {"decision": "approve"}).status_code == 403


def test_the_pic_splits_the_area_grant_and_others_cannot(current_cycle, pool, area, idea, pic, member, reviewer, other_area):
    services.allocation_set(cycle=current_cycle, pool=pool, area=area, gpu_hours=300, actor=reviewer)
    grant = services.allocation_set(cycle=current_cycle, pool=pool, area=area, idea=idea, gpu_hours=120, actor=pic)
    assert grant.gpu_hours == 120 and grant.parent.area == area
    change = AllocationChange.objects.filter(allocation=grant).latest("pk")
    assert (change.actor, change.before, change.after) == (pic, 0, 120)
    with pytest.raises(PermissionDenied):
        services.allocation_set(cycle=current_cycle, pool=pool, area=area, idea=idea, gpu_hours=10, actor=member)
    with pytest.raises(PermissionDenied):  # a PIC sets idea grants, not the area's own grant
        services.allocation_set(cycle=current_cycle, pool=pool, area=area, gpu_hours=10_000, actor=pic)
    other_pic = other_area.pic
    with pytest.raises(PermissionDenied):
        services.allocation_set(cycle=current_cycle, pool=pool, area=area, idea=idea, gpu_hours=10, actor=other_pic)


def test_only_staff_move_phases_and_only_forward(open_cycle, staff, reviewer):
    with pytest.raises(PermissionDenied):
        services.cycle_set_phase(cycle=open_cycle, phase=Phase.IN_REVIEW, actor=reviewer)
    moved = services.cycle_set_phase(cycle=open_cycle, phase=Phase.IN_REVIEW, actor=staff)
    assert moved.phase == Phase.IN_REVIEW
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="only move forward"):
        services.cycle_set_phase(cycle=moved, phase=Phase.OPEN, actor=staff)


def test_closed_cycles_accept_no_decisions(closed_cycle, pool, area, idea, pic):
    from compute.errors import CycleClosed

    with pytest.raises(CycleClosed):
        services.allocation_set(cycle=closed_cycle, pool=pool, area=area, idea=idea, gpu_hours=1, actor=pic)


def test_only_the_requester_or_the_pic_edits_an_open_request(open_request, make_user, pic):
    with pytest.raises(RequestAlreadyOpen, match="only .* or the PIC of .* may amend it"):
        services.request_submit(
            requester=make_user("outsider"), cycle=open_request.cycle, pool=open_request.pool, area=open_request.area,
            gpu_hours=500, justification="mine now", stage="pilot",
        )
    edited, created = services.request_submit(
        requester=pic, cycle=open_request.cycle, pool=open_request.pool, area=open_request.area,
        gpu_hours=150, justification="PIC raised it", stage="scale-up",
    )
    assert not created and edited.pk == open_request.pk and edited.revisions.get().editor == pic
