"""The compute pages render from real data, keep a fixed query count, and export every table as CSV."""
import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compute import services
from ideas import services as idea_services

OVERVIEW_QUERIES = 15  # session, user, cycle, 3 figure sums (grants, usage, requests), areas, 2 forecast sums (recent usage, holds), org budgets, usage per pool and day, picker, open cycle, reviewer group, inbox badge


def _grant_and_use(cycle, pool, area, reviewer, pic, idea=None, *, hours=100, used_hours=3, key="A"):
    services.allocation_set(cycle=cycle, pool=pool, area=area, gpu_hours=hours, actor=reviewer)
    if idea is not None:
        services.allocation_set(cycle=cycle, pool=pool, area=area, idea=idea, gpu_hours=hours // 2, actor=pic)
    start = cycle.start + timedelta(hours=2)
    services.usage_charge_segment(attempt_key=key, segment_start=start, segment_end=start + timedelta(hours=used_hours),
                                  gpus=2, pool=pool, area=area, idea=idea)


def _overview_queries(client, cycle) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/compute/cycles/{cycle.pk}/")
    assert response.status_code == 200
    return len(queries)


def test_the_overview_query_count_does_not_grow_with_areas_or_usage(client, current_cycle, pool, area, idea, reviewer, pic, staff, make_user):
    client.force_login(reviewer)
    _grant_and_use(current_cycle, pool, area, reviewer, pic, idea)
    assert _overview_queries(client, current_cycle) == OVERVIEW_QUERIES
    for n in range(5):
        extra = idea_services.area_create(slug=f"area-{n}", name=f"Area {n}", pic=make_user(f"pic{n}"), by=staff)
        _grant_and_use(current_cycle, pool, extra, reviewer, pic, hours=50, key=f"B{n}")
    assert _overview_queries(client, current_cycle) == OVERVIEW_QUERIES


def test_the_overview_shows_each_area_and_the_charts_data(client, current_cycle, pool, area, idea, reviewer, pic):
    _grant_and_use(current_cycle, pool, area, reviewer, pic, idea, used_hours=3)
    client.force_login(pic)
    page = client.get(f"/compute/cycles/{current_cycle.pk}/").content.decode()
    assert 'id="figure-areas"' in page and "Routing" in page
    assert '"name": "Granted"' in page or '"name":"Granted"' in page
    assert "Review desk" not in page  # the PIC is not a reviewer


def test_every_table_downloads_as_csv(client, current_cycle, pool, area, idea, reviewer, pic):
    _grant_and_use(current_cycle, pool, area, reviewer, pic, idea, used_hours=3)
    client.force_login(pic)
    urls = [f"/compute/cycles/{current_cycle.pk}/{t}.csv" for t in ("areas", "pools", "burndown", "requests", "allocations")]
    urls += [f"/compute/areas/{area.slug}/{t}.csv?cycle={current_cycle.pk}" for t in ("grants", "ideas")]
    urls += ["/compute/trends/per_area.csv", "/compute/trends/landed.csv"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/csv")
        assert next(csv.reader(io.StringIO(response.content.decode())))  # a header row
    areas = list(csv.reader(io.StringIO(client.get(urls[0]).content.decode())))
    assert areas == [["Area", "Requested GPU-h", "Granted GPU-h", "Used GPU-h", "Remaining GPU-h"], ["routing", "0.00", "100.00", "6.00", "94.00"]]
    ideas = list(csv.reader(io.StringIO(client.get(urls[6]).content.decode())))
    assert ideas[1][:1] == [idea.key] and ideas[1][4:] == ["50.00", "6.00", "44.00"]
    assert client.get(f"/compute/cycles/{current_cycle.pk}/secrets.csv").status_code == 404


def test_the_burn_down_counts_usage_on_the_local_day_it_started(client, current_cycle, pool, area, reviewer, pic):
    _grant_and_use(current_cycle, pool, area, reviewer, pic, used_hours=3)  # 6 GPU-h on the first day, 02:00-05:00
    client.force_login(pic)
    rows = list(csv.reader(io.StringIO(client.get(f"/compute/cycles/{current_cycle.pk}/burndown.csv").content.decode())))
    budget = current_cycle.allocations.get(level="org").gpu_hours
    assert rows[1] == [str(current_cycle.first_day), format(budget - 6, "f"), format((budget * 13 / 14).quantize(budget), "f")]
    assert len(rows) == 15


def test_the_area_page_shows_grants_and_prefills_a_request(client, current_cycle, open_cycle, pool, area, idea, reviewer, pic):
    _grant_and_use(current_cycle, pool, area, reviewer, pic, idea, used_hours=3)
    client.force_login(pic)
    page = client.get(f"/compute/areas/{area.slug}/").content.decode()
    assert "Split the grant" in page and idea.key in page
    assert "/compute/requests/new/?area=routing" in page
    form = client.get("/compute/requests/new/?area=routing&gpu_hours=250&stage=scale-up").content.decode()
    assert 'value="250"' in form and f"For cycle <strong>{open_cycle}</strong>" in form


def test_the_pic_splits_the_grant_from_the_area_page(client, current_cycle, pool, area, idea, reviewer, pic):
    services.allocation_set(cycle=current_cycle, pool=pool, area=area, gpu_hours=100, actor=reviewer)
    client.force_login(pic)
    url = f"/compute/areas/{area.slug}/grant/?cycle={current_cycle.pk}"
    response = client.post(url, {"idea": idea.key, "pool": "h100", "gpu_hours": "150"}, follow=True)
    assert "only 100.00 GPU-h left" in response.content.decode()
    response = client.post(url, {"idea": idea.key, "pool": "h100", "gpu_hours": "60"}, follow=True)
    assert "is now 60.00 GPU-h" in response.content.decode()


def test_a_request_submitted_from_the_form_lands_in_the_open_cycle(client, open_cycle, pool, area, idea, member):
    client.force_login(member)
    response = client.post("/compute/requests/new/", {
        "area": "routing", "idea": idea.key, "pool": "h100", "gpu_hours": "80", "stage": "pilot",
        "justification": "<script>alert(1)</script> pilot looked **good**", "evidence_links": "/ideas/IDEA-0001\nhttps://wandb.ai/x",
    })
    assert response.status_code == 302
    request = open_cycle.requests.get()
    assert request.evidence_links == ["/ideas/IDEA-0001", "https://wandb.ai/x"]
    response = client.post("/compute/requests/new/", {"area": "routing", "pool": "h100", "gpu_hours": "-3", "stage": "pilot", "justification": "x"})
    assert response.status_code == 400 and "must be more than 0" in response.content.decode()


def test_the_review_queue_escapes_justifications_and_decides_in_place(client, open_cycle, pool, area, member, reviewer):
    request, _ = services.request_submit(requester=member, cycle=open_cycle, pool=pool, area=area, gpu_hours=80,
                                         justification="<script>alert(1)</script> **needed**", stage="pilot")
    client.force_login(reviewer)
    page = client.get(f"/compute/cycles/{open_cycle.pk}/review/").content.decode()
    assert "<script>alert(1)</script>" not in page and "<strong>needed</strong>" in page
    response = client.post(f"/compute/requests/{request.pk}/review/", {"decision": "trim", "gpu_hours": "50", "comment": "half"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Trimmed" in response.content.decode()
    response = client.post(f"/compute/requests/{request.pk}/review/", {"decision": "approve"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 409 and "already trimmed" in response.content.decode()


def test_the_idea_page_shows_the_compute_panel(client, current_cycle, pool, area, idea, reviewer, pic):
    _grant_and_use(current_cycle, pool, area, reviewer, pic, idea, used_hours=3)
    client.force_login(pic)
    page = client.get(idea.get_absolute_url()).content.decode()
    assert 'id="compute-panel"' in page
    assert "50 GPU-h" in page and "44 GPU-h" in page  # granted, remaining


def test_trends_show_usage_per_area_across_cycles(client, current_cycle, closed_cycle, pool, area, idea, reviewer, pic):
    _grant_and_use(current_cycle, pool, area, reviewer, pic, idea)
    client.force_login(pic)
    page = client.get("/compute/trends/").content.decode()
    assert 'id="figure-trend"' in page and "Routing" in page


@pytest.mark.parametrize("url", ["/compute/", "/compute/trends/", "/compute/requests/new/"])
def test_pages_need_a_signed_in_member(client, url):
    assert client.get(url).status_code == 302


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(client, current_cycle, pool, area, idea,
                                                                             reviewer, pic):
    """Issue 12.10 (OWASP CSV injection): user text starting with = + - @ gets a leading quote; numbers do not."""
    idea.title = '=HYPERLINK("http://evil.example","click")'
    idea.save(update_fields=["title"])
    _grant_and_use(current_cycle, pool, area, reviewer, pic, idea, used_hours=3)
    client.force_login(pic)
    rows = list(csv.reader(io.StringIO(
        client.get(f"/compute/areas/{area.slug}/ideas.csv?cycle={current_cycle.pk}").content.decode())))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'" + idea.title in cells and idea.title not in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@")]


def test_spreadsheet_safe_leaves_numbers_alone():
    from core.csv_export import spreadsheet_safe
    assert spreadsheet_safe("-3.50") == "-3.50"
    assert [spreadsheet_safe(text) for text in ("-x", "+1+cmd", "@SUM(A1)", "\tx", "plain")] == \
        ["'-x", "'+1+cmd", "'@SUM(A1)", "'\tx", "plain"]
