"""The compute API's lists: pools, and requests with their filters, detail and visibility."""
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from compute import services
from compute.models import Pool
from ideas.models import Area


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_pools_are_listed_by_name(member, pool):
    response = _client(member).get("/api/v1/pools/")

    assert response.status_code == 200
    assert response.json()["results"] == [{"name": "h100", "gpu_type": "H100 80GB", "gpu_count": 8}]


@pytest.fixture
def requests_made(member, area, other_area, idea, pool, open_cycle):
    def submit(area, idea=None, hours="10", stage="pilot"):
        return services.request_submit(requester=member, cycle=open_cycle, pool=pool, area=area, idea=idea,
                                       gpu_hours=Decimal(hours), justification="Because.", stage=stage)[0]

    return [submit(area), submit(area, idea, "20", "scale-up"), submit(other_area, hours="30")]


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize("query, expected", [
    ("", [2, 1, 0]),
    ("area=routing", [1, 0]),
    ("area=fp4", [2]),
    ("stage=scale-up", [1]),
    ("status=open", [2, 1, 0]),
    ("status=approved", []),
])
def test_requests_are_filtered(member, requests_made, open_cycle, query, expected):
    response = _client(member).get(f"/api/v1/requests/?cycle={open_cycle.pk}&{query}")
    assert _ids(response) == [requests_made[i].pk for i in expected]


def test_the_cycle_filter(member, requests_made, open_cycle, current_cycle):
    client = _client(member)

    assert len(_ids(client.get(f"/api/v1/requests/?cycle={open_cycle.pk}"))) == 3
    assert _ids(client.get(f"/api/v1/requests/?cycle={current_cycle.pk}")) == []


@pytest.mark.parametrize("query, field", [("status=maybe", "status"), ("stage=late", "stage"), ("cycle=x", "cycle")])
def test_bad_filters_are_a_400(member, query, field):
    response = _client(member).get(f"/api/v1/requests/?{query}")

    assert response.status_code == 400 and field in response.json()


def test_one_request_in_detail(member, requests_made):
    second = requests_made[1]

    body = _client(member).get(f"/api/v1/requests/{second.pk}/").json()

    assert (body["id"], body["area"], body["idea"], body["gpu_hours"], body["stage"], body["status"]) == (
        second.pk, "routing", second.idea.key, 20.0, "scale-up", "open")


def test_a_restricted_areas_requests_are_hidden_but_not_from_reviewers(make_user, reviewer, requests_made, other_area):
    Area.objects.filter(pk=other_area.pk).update(restricted=True)
    outsider = make_user("olga")
    hidden = requests_made[2]

    listing = f"/api/v1/requests/?cycle={hidden.cycle_id}"
    assert hidden.pk not in _ids(_client(outsider).get(listing))
    assert _client(outsider).get(f"/api/v1/requests/{hidden.pk}/").status_code == 404
    assert hidden.pk in _ids(_client(reviewer).get(listing))


def test_the_request_list_costs_the_same_queries_for_more_requests(member, requests_made, area, pool, open_cycle,
                                                                   make_user):
    client, listing = _client(member), f"/api/v1/requests/?cycle={open_cycle.pk}"
    with CaptureQueriesContext(connection) as few:
        client.get(listing)
    for name in ("ann", "ben", "cat"):
        other_pool = Pool.objects.create(name=f"a100-{name}", gpu_type="A100", gpu_count=4)
        services.request_submit(requester=make_user(name), cycle=open_cycle, pool=other_pool, area=area, idea=None,
                                gpu_hours=Decimal("5"), justification="More.", stage="pilot")
    with CaptureQueriesContext(connection) as more:
        assert client.get(listing).json()["count"] == 6

    assert len(more) == len(few)
