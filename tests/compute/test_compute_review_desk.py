"""The review desk: filters and sorting in the URL, a fixed query count, decisions that move the running budget
panel, bulk approval of pilots within budget, scale-ups flagged without a finished pilot, and a new request
for a target with an open one answered in the user's terms."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compute import services
from compute.desk import scale_up_flag
from compute.evidence import StudyEvidence
from compute.models import Request
from compute.templatetags.compute_tags import gpu_hours
from ideas import services as idea_services

# session, user, reviewer group, cycle, previous cycle, 3 figure sums, panel pools, open count, page count, page,
# linked studies, area + pool + requester choices, cycle picker, inbox badge (no previous cycle here: its figures add 3)
DESK_QUERIES = 18


def _ask(cycle, pool, area, requester, hours, *, idea=None, stage="pilot", links=()):
    request, _ = services.request_submit(requester=requester, cycle=cycle, pool=pool, area=area, idea=idea, gpu_hours=hours,
                                         justification="Because.", stage=stage, evidence_links=list(links))
    return request


def _ids(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr class="desk-row[^"]*" id="request-(\d+)"', page)]


@pytest.fixture
def ideas(area, member):
    return [idea_services.idea_create(submitter=member, area=area, title=f"Idea {n}", summary="s") for n in range(6)]


def _desk_queries(client, cycle, query="") -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/compute/cycles/{cycle.pk}/review/{query}")
    assert response.status_code == 200
    return len(queries)


def test_the_desk_query_count_does_not_grow_with_requests(client, open_cycle, pool, area, other_area, ideas, member, pic, reviewer):
    client.force_login(reviewer)
    _ask(open_cycle, pool, area, member, 10, links=["/experiments/studies/99/"])
    assert _desk_queries(client, open_cycle) == DESK_QUERIES
    for n, idea in enumerate(ideas):
        _ask(open_cycle, pool, area, pic, 20 + n, idea=idea, stage="scale-up", links=[f"/experiments/studies/{n + 1}/"])
    _ask(open_cycle, pool, other_area, member, 30)
    assert _desk_queries(client, open_cycle) == DESK_QUERIES
    assert _desk_queries(client, open_cycle, "?area=routing&sort=-age") == DESK_QUERIES + 1  # the area named


def test_filters_and_sorting_live_in_the_url(client, open_cycle, pool, area, other_area, ideas, member, pic, reviewer):
    small = _ask(open_cycle, pool, area, member, 10)
    large = _ask(open_cycle, pool, other_area, pic, 300, stage="scale-up")
    middle = _ask(open_cycle, pool, area, pic, 50, idea=ideas[0], stage="integration")
    client.force_login(reviewer)
    base = f"/compute/cycles/{open_cycle.pk}/review/"
    assert _ids(client.get(base).content.decode()) == [large.pk, middle.pk, small.pk]  # largest first
    assert _ids(client.get(base + "?sort=hours").content.decode()) == [small.pk, middle.pk, large.pk]
    assert _ids(client.get(base + "?area=routing").content.decode()) == [middle.pk, small.pk]
    assert _ids(client.get(base + "?requester=pia&stage=scale-up").content.decode()) == [large.pk]
    page = client.get(base + "?area=routing").content.decode()
    assert "sort=-area" in page and "area=routing" in page  # sort links keep the filters
    rows = client.get(f"/compute/cycles/{open_cycle.pk}/review.csv?area=routing&sort=hours").content.decode().splitlines()
    assert [row.split(",")[0] for row in rows] == ["#", str(small.pk), str(middle.pk)]
    response = client.get(base + "?area=nowhere&sort=sideways")
    assert response.status_code == 400 and "area:" in response.content.decode() and "sort:" in response.content.decode()


def test_a_decision_answers_with_the_row_and_moves_the_budget_panel(client, open_cycle, pool, area, member, reviewer):
    request = _ask(open_cycle, pool, area, member, 120)
    client.force_login(reviewer)
    page = client.get(f"/compute/cycles/{open_cycle.pk}/review/").content.decode()
    budget = open_cycle.allocations.get(level="org").gpu_hours
    assert re.search(r'data-pool="h100"><td>h100</td><td class="num granted">0</td>', page)
    response = client.post(f"/compute/requests/{request.pk}/review/", {"decision": "trim", "gpu_hours": "100", "comment": "less"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Trimmed" in response.content.decode()
    assert response["HX-Trigger"] == "budgetChanged"  # the panel listens for it and reloads itself
    body = client.get(f"/compute/cycles/{open_cycle.pk}/review/panel/").content.decode()
    assert re.search(r'data-pool="h100"><td>h100</td><td class="num granted">100</td>', body)
    assert f'<td class="num left">{gpu_hours(budget - 100)}</td>' in body and '<strong id="open-count">0</strong>' in body
    refused = client.post(f"/compute/requests/{request.pk}/review/", {"decision": "approve"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 409 and "HX-Trigger" not in refused  # nothing changed: no reload


def test_bulk_approval_grants_the_selected_pilots_or_nothing(client, open_cycle, pool, area, other_area, ideas, member, pic, reviewer):
    first = _ask(open_cycle, pool, area, member, 40)
    second = _ask(open_cycle, pool, other_area, member, 60)
    scale_up = _ask(open_cycle, pool, area, pic, 70, idea=ideas[0], stage="scale-up")
    client.force_login(reviewer)
    url = f"/compute/cycles/{open_cycle.pk}/review/approve-pilots/"
    page = client.post(url, {"requests": [first.pk, scale_up.pk]}, follow=True).content.decode()
    assert "bulk approval is for pilots only" in page and f"#{scale_up.pk} (scale-up)" in page
    assert not Request.objects.exclude(status="open").exists()  # nothing half-done
    page = client.post(url, {"requests": [first.pk, second.pk], "back": "area=routing"}, follow=True)
    assert page.redirect_chain[-1][0].endswith("?area=routing")
    assert "Approved 2 pilot requests: 100.00 GPU-h granted." in page.content.decode()
    assert set(Request.objects.filter(status="approved").values_list("pk", flat=True)) == {first.pk, second.pk}


def test_bulk_approval_over_the_budget_left_grants_nothing(open_cycle, pool, area, other_area, member, reviewer):
    budget = open_cycle.allocations.get(level="org").gpu_hours
    first = _ask(open_cycle, pool, area, member, budget - 10)
    second = _ask(open_cycle, pool, other_area, member, 20)
    with pytest.raises(Exception, match="has only .* GPU-h left to hand out"):
        services.requests_approve_pilots(cycle=open_cycle, request_ids=[first.pk, second.pk], reviewer=reviewer)
    assert not Request.objects.exclude(status="open").exists()


def test_a_scale_up_without_evidence_is_flagged(client, open_cycle, pool, area, ideas, member, pic, reviewer):
    _ask(open_cycle, pool, area, pic, 80, idea=ideas[0], stage="scale-up")
    _ask(open_cycle, pool, area, pic, 90, idea=ideas[1], stage="scale-up", links=["https://wandb.ai/some/run"])
    _ask(open_cycle, pool, area, member, 10)
    client.force_login(reviewer)
    page = client.get(f"/compute/cycles/{open_cycle.pk}/review/").content.decode()
    assert page.count("scale-up without linked evidence") == 2
    assert page.count('class="desk-row flagged"') == 2


def test_a_second_request_for_a_target_offers_to_amend_the_open_one(client, open_cycle, pool, area, member, pic):
    existing = _ask(open_cycle, pool, area, member, 40)
    form = {"area": "routing", "pool": "h100", "gpu_hours": "90", "stage": "pilot", "justification": "More."}
    client.force_login(pic)  # the PIC may amend it, but is asked first
    page = client.post("/compute/requests/new/", form).content.decode()
    assert f"Routing already has an open request for h100 in this cycle (request #{existing.pk}: mona asked for 40.00 GPU-h" in page
    assert f'name="amend" value="{existing.pk}"' in page
    assert client.post("/compute/requests/new/", {**form, "amend": existing.pk}).status_code == 302
    existing.refresh_from_db()
    assert existing.gpu_hours == 90 and existing.revisions.count() == 1


def test_someone_who_may_not_amend_is_told_whom_to_ask(client, open_cycle, pool, area, member, make_user):
    _ask(open_cycle, pool, area, member, 40)
    client.force_login(make_user("otto"))
    page = client.post("/compute/requests/new/", {"area": "routing", "pool": "h100", "gpu_hours": "90", "stage": "pilot",
                                                  "justification": "More."}).content.decode()
    assert "only mona or the PIC of Routing (pia) may amend it" in page and 'name="amend"' not in page


@pytest.mark.parametrize(("stage", "finished", "flag"), [
    ("scale-up", [], "scale-up without linked evidence"),
    ("scale-up", [False], "scale-up without a finished pilot"),
    ("scale-up", [False, True], ""),
    ("pilot", [], ""),
    ("integration", [False], ""),
])
def test_only_a_scale_up_needs_a_finished_pilot(stage, finished, flag):
    studies = [StudyEvidence(label=f"study-{n}", url="/", finished=done, seeds=3, verdict=(), caveats=()) for n, done in enumerate(finished)]
    assert scale_up_flag(Request(stage=stage), studies) == flag
