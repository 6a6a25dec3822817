"""The compute REST API: shapes, bad input (400), state conflicts (409) and permissions (403)."""
from datetime import timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from compute import services
from compute.models import Request


@pytest.fixture
def api():
    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


def _body(open_cycle, **changes):
    body = {"cycle": open_cycle.pk, "area": "routing", "idea": None, "pool": "h100", "gpu_hours": 120,
            "justification": "Pilot was **positive**; scaling up.", "stage": "pilot"}
    body.update(changes)
    return body


def test_cycles_list_their_id_start_end_and_phase(api, member, open_cycle, current_cycle):
    response = api(member).get("/api/v1/cycles/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [open_cycle.pk, current_cycle.pk]
    assert rows[0]["phase"] == "open" and rows[1]["phase"] == "published"
    assert set(rows[0]) >= {"id", "start", "end", "phase"}


def test_a_request_is_created_then_edited_with_history(api, member, area, idea, open_cycle):
    created = api(member).post("/api/v1/requests/", _body(open_cycle, idea=idea.key), format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["idea"] == idea.key and created.json()["gpu_hours"] == 120.0
    edited = api(member).post("/api/v1/requests/", _body(open_cycle, idea=idea.key, gpu_hours=150, stage="scale-up"), format="json")
    assert edited.status_code == 200 and edited.json()["id"] == created.json()["id"]
    assert edited.json()["revisions"] == 1
    request = Request.objects.get()
    assert request.revisions.get().gpu_hours == Decimal("120.00") and request.gpu_hours == Decimal("150.00")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"gpu_hours": -5}, "gpu_hours"),
        ({"gpu_hours": 0}, "gpu_hours"),
        ({"gpu_hours": 10_000_000}, "gpu_hours"),  # more than the whole pool for the whole cycle
        ({"gpu_hours": "1e30"}, "gpu_hours"),
        ({"gpu_hours": "lots"}, "gpu_hours"),
        ({"stage": "moonshot"}, "stage"),
        ({"pool": "tpu"}, "pool"),
        ({"area": "nowhere"}, "area"),
        ({"idea": "IDEA-9999"}, "idea"),
        ({"justification": "   "}, "justification"),
        ({"evidence_links": ["javascript:alert(1)"]}, "evidence_links"),
        ({"cycle": 999999}, "cycle"),
    ],
)
def test_bad_request_input_is_a_400_naming_the_field(api, member, area, open_cycle, changes, field):
    response = api(member).post("/api/v1/requests/", _body(open_cycle, **changes), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert not Request.objects.exists()


def test_an_idea_of_another_area_is_a_400(api, member, area, other_area, idea, open_cycle):
    response = api(member).post("/api/v1/requests/", _body(open_cycle, area=other_area.slug, idea=idea.key), format="json")
    assert response.status_code == 400 and "idea" in response.json()


def test_a_request_outside_the_open_phase_is_a_409_saying_when_the_next_cycle_opens(api, member, area, current_cycle, open_cycle):
    response = api(member).post("/api/v1/requests/", _body(current_cycle), format="json")
    assert response.status_code == 409
    assert response.json()["phase"] == "published"
    assert f"id {open_cycle.pk}" in response.json()["detail"] and "open for requests now" in response.json()["detail"]


def test_with_no_open_cycle_the_409_names_the_date_it_opens(api, member, area, current_cycle, calendar):
    response = api(member).post("/api/v1/requests/", _body(current_cycle), format="json")
    assert response.status_code == 409
    opens = calendar.opens_at(calendar.window_after(calendar.window_after(current_cycle.window)))
    assert f"opens for requests on {opens:%a %d %b %Y}" in response.json()["detail"]


def test_anonymous_clients_cannot_request(api, area, open_cycle):
    assert api().post("/api/v1/requests/", _body(open_cycle), format="json").status_code in (401, 403)


def test_a_reviewer_approves_and_the_allocation_tree_shows_the_grant(api, member, reviewer, area, open_cycle):
    request_id = api(member).post("/api/v1/requests/", _body(open_cycle), format="json").json()["id"]
    review = api(reviewer).post(f"/api/v1/requests/{request_id}/review/", {"decision": "approve"}, format="json")
    assert review.status_code == 200, review.json()
    assert (review.json()["grant_before"], review.json()["grant_after"]) == (0.0, 120.0)
    tree = api(member).get(f"/api/v1/cycles/{open_cycle.pk}/allocations/").json()["results"]
    org = next(row for row in tree if row["level"] == "org")
    area_row = next(row for row in tree if row["level"] == "area")
    assert area_row["parent"] == org["id"] and area_row["gpu_hours"] == 120.0 and area_row["area"] == "routing"
    assert org["children_gpu_hours"] == 120.0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"decision": "trim", "gpu_hours": 500, "comment": "too much"}, "gpu_hours"),  # a trim must grant less
        ({"decision": "trim", "gpu_hours": -1, "comment": "x"}, "gpu_hours"),
        ({"decision": "trim", "comment": "no amount"}, "gpu_hours"),
        ({"decision": "refuse"}, "comment"),
    ],
)
def test_bad_review_input_is_a_400(api, member, reviewer, area, open_cycle, body, field):
    request_id = api(member).post("/api/v1/requests/", _body(open_cycle), format="json").json()["id"]
    response = api(reviewer).post(f"/api/v1/requests/{request_id}/review/", body, format="json")
    assert response.status_code == 400 and field in response.json()


def test_a_grant_overdrawing_the_org_budget_is_a_409_with_what_is_left(api, member, reviewer, area, pool, open_cycle):
    budget = open_cycle.allocations.get(level="org").gpu_hours  # 8 GPUs × 336 h × 0.85 = 2284.80
    first = api(member).post("/api/v1/requests/", _body(open_cycle, gpu_hours=2000), format="json").json()["id"]
    api(reviewer).post(f"/api/v1/requests/{first}/review/", {"decision": "approve"}, format="json")
    second = api(member).post("/api/v1/requests/", _body(open_cycle, area="routing", idea=None, pool="h100", gpu_hours=400), format="json").json()["id"]
    response = api(reviewer).post(f"/api/v1/requests/{second}/review/", {"decision": "approve"}, format="json")
    assert response.status_code == 409
    assert response.json()["parent_remaining"] == float(budget - 2000)
    assert "284.80 GPU-h left" in response.json()["detail"]


def test_a_decided_request_cannot_be_reviewed_again(api, member, reviewer, second_reviewer, area, open_cycle):
    request_id = api(member).post("/api/v1/requests/", _body(open_cycle), format="json").json()["id"]
    api(reviewer).post(f"/api/v1/requests/{request_id}/review/", {"decision": "approve"}, format="json")
    again = api(second_reviewer).post(f"/api/v1/requests/{request_id}/review/", {"decision": "refuse", "comment": "no"}, format="json")
    assert again.status_code == 409 and "already approved" in again.json()["detail"]


def test_usage_rolls_up_per_area_idea_and_pool(api, member, area, idea, current_cycle):
    from datetime import timedelta

    start = current_cycle.start + timedelta(hours=1)
    services.usage_charge_segment(attempt_key="A1", segment_start=start, segment_end=start + timedelta(hours=2), gpus=4, pool="h100", area=area, idea=idea)
    services.usage_charge_segment(attempt_key="A2", segment_start=start, segment_end=start + timedelta(hours=1), gpus=2, pool="h100", area=area)
    response = api(member).get(f"/api/v1/usage/?cycle={current_cycle.pk}&area={area.slug}")
    assert response.status_code == 200
    body = response.json()
    assert body["total_gpu_hours"] == 10.0
    assert {(row["idea"], row["gpu_hours"]) for row in body["results"]} == {(idea.key, 8.0), (None, 2.0)}
    assert api(member).get("/api/v1/usage/?cycle=abc").status_code == 400
    assert api(member).get("/api/v1/usage/?area=nowhere").status_code == 400


def test_requests_list_with_the_desks_filters(api, member, pic, reviewer, area, other_area, idea, open_cycle):
    api(member).post("/api/v1/requests/", _body(open_cycle, gpu_hours=10), format="json")
    api(pic).post("/api/v1/requests/", _body(open_cycle, idea=idea.key, gpu_hours=300, stage="scale-up"), format="json")
    api(pic).post("/api/v1/requests/", _body(open_cycle, area="fp4", gpu_hours=50), format="json")
    client = api(reviewer)
    listed = client.get(f"/api/v1/requests/?cycle={open_cycle.pk}")
    assert listed.status_code == 200 and [row["gpu_hours"] for row in listed.json()["results"]] == [300, 50, 10]
    assert [row["area"] for row in client.get(f"/api/v1/requests/?cycle={open_cycle.pk}&area=routing&sort=hours").json()["results"]] == ["routing", "routing"]
    assert [row["gpu_hours"] for row in client.get(f"/api/v1/requests/?cycle={open_cycle.pk}&requester=pia&stage=pilot").json()["results"]] == [50]
    bad = client.get(f"/api/v1/requests/?cycle={open_cycle.pk}&area=nowhere&sort=sideways")
    assert bad.status_code == 400 and set(bad.json()) >= {"sort"}
    assert client.get(f"/api/v1/requests/?cycle={open_cycle.pk}&area=nowhere").json() == {"area": "no area 'nowhere'"}


def test_figures_per_level_come_from_the_one_selector(api, member, reviewer, area, idea, current_cycle, pool, pic):
    services.allocation_set(cycle=current_cycle, pool=pool, area=area, gpu_hours=100, actor=reviewer)
    services.allocation_set(cycle=current_cycle, pool=pool, area=area, idea=idea, gpu_hours=40, actor=pic)
    start = current_cycle.start
    services.usage_charge_segment(attempt_key="x", segment_start=start, segment_end=start + timedelta(minutes=30), gpus=3,
                                  pool=pool, area=area, idea=idea)
    client = api(member)
    areas = client.get(f"/api/v1/cycles/{current_cycle.pk}/figures/?level=area").json()["results"]
    assert areas == [{"target": "routing", "budget_gpu_hours": None, "granted_gpu_hours": 100.0, "used_gpu_hours": 1.5,
                      "remaining_gpu_hours": 98.5, "unallocated_gpu_hours": None, "requested_gpu_hours": 0.0,
                      "open_requested_gpu_hours": 0.0, "has_grant": True}]
    [row] = client.get(f"/api/v1/cycles/{current_cycle.pk}/figures/?level=idea").json()["results"]
    assert row["target"] == idea.key and row["remaining_gpu_hours"] == 38.5
    [pool_row] = client.get(f"/api/v1/cycles/{current_cycle.pk}/figures/?level=pool").json()["results"]
    assert pool_row["target"] == "h100" and pool_row["unallocated_gpu_hours"] == pool_row["budget_gpu_hours"] - 100
    assert client.get(f"/api/v1/cycles/{current_cycle.pk}/figures/?level=planet").status_code == 400
