"""Demo data and management commands."""
import io

from django.core.management import call_command

from accounts.models import ApiToken
from accounts.services import hash_secret
from ideas.demo import seed
from ideas.demo_data import AREAS, DEMO_PASSWORD
from ideas.lifecycle import Status
from ideas.models import Area, Decision, Idea


def test_seed_covers_every_state_and_is_idempotent(db, client, django_assert_max_num_queries):
    out = io.StringIO()
    # A query budget rather than a stopwatch: wall time on a shared CI machine is noise.
    # (About 1 s on an idle 2-core machine; see docs/benchmarks.md.)
    with django_assert_max_num_queries(2600):
        seed(out)

    assert Area.objects.count() == len(AREAS) == 20
    assert set(Idea.objects.values_list("status", flat=True)) == set(Status.values)
    closed = Idea.objects.filter(status__in=[Status.LANDED, Status.REJECTED]).count()
    assert Decision.objects.count() == closed > 0
    assert "maya.chen" in out.getvalue() and DEMO_PASSWORD in out.getvalue()
    assert client.login(username="admin", password=DEMO_PASSWORD)
    assert client.get("/admin/ideas/idea/").status_code == 200

    counts = (Area.objects.count(), Idea.objects.count(), Decision.objects.count())
    seed(io.StringIO())
    assert (Area.objects.count(), Idea.objects.count(), Decision.objects.count()) == counts


def test_create_api_token_prints_a_working_token(make_user, area, client):
    make_user("tina")
    out = io.StringIO()
    call_command("create_api_token", "tina", stdout=out)
    key = out.getvalue().strip()
    assert ApiToken.objects.get(owner__username="tina").key_hash == hash_secret(key)  # only the hash is kept
    assert client.get("/api/v1/areas/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
