"""The demo's compute data (every area of the current cycle, as a review meeting opens it) shows one set of
figures on the overview CSV, the area CSVs, the ledger and the API: the randomised-ledger test's agreement, on
the data a newcomer sees first."""
import io
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from compute import selectors
from compute.demo import seed as seed_compute
from compute.figures import cycle_figures, hours
from ideas.demo import seed as seed_ideas
from ideas.models import Area
from tests.compute.test_compute_figures import _csv

pytestmark = pytest.mark.timeout(300)


@pytest.mark.django_db
def test_the_demo_cycle_shows_the_same_figures_everywhere(client, django_user_model):
    seed_ideas(io.StringIO())
    seed_compute(io.StringIO())
    cycle = selectors.cycle_current()
    staff = django_user_model.objects.get(username="admin")
    client.force_login(staff)
    api = APIClient()
    api.force_authenticate(staff)
    figures = cycle_figures(cycle)

    overview = {row[0]: row for row in _csv(client, f"/compute/cycles/{cycle.pk}/areas.csv")[1:]}
    api_areas = {row["target"]: row for row in
                 api.get(f"/api/v1/cycles/{cycle.pk}/figures/?level=area&page_size=200").json()["results"]}
    checked = 0
    for area in Area.objects.order_by("slug"):
        shown = figures.area(area.pk)
        if area.slug not in overview:
            assert shown.granted == shown.used == 0
            continue
        assert overview[area.slug][2:] == [str(shown.granted), str(shown.used), str(shown.remaining)], area.slug
        api_row = api_areas[area.slug]
        assert [Decimal(str(api_row[f"{n}_gpu_hours"])) for n in ("granted", "used", "remaining")] == \
            [shown.granted, shown.used, shown.remaining], area.slug
        ledger = _csv(client, f"/compute/areas/{area.slug}/ledger.csv?cycle={cycle.pk}")[1:]
        assert hours(sum((Decimal(row[-1]) for row in ledger), Decimal(0))) == shown.used, area.slug
        checked += 1
    assert checked >= 5  # the demo grants most areas compute in the current cycle
    org = figures.org()
    assert org.used == sum((figures.area(area.pk).used for area in Area.objects.all()), Decimal(0))
    assert Decimal(str(api.get(f"/api/v1/cycles/{cycle.pk}/figures/?level=org").json()["results"][0]["used_gpu_hours"])) == org.used
