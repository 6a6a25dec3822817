"""The idea list's cached body (ideas/list_cache.py): served from Redis while nothing shown changed, never
after an edit, never across visibility, and never with someone else's nav bar."""
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ideas import services
from ideas.lifecycle import Status
from ideas.models import Idea


def _list(client: Client, query: str = "") -> str:
    response = client.get(f"/ideas/{query}")
    assert response.status_code == 200
    return response.content.decode()


def _queries(client: Client, query: str = "") -> int:
    with CaptureQueriesContext(connection) as captured:
        _list(client, query)
    return len(captured.captured_queries)


@pytest.fixture
def viewer(client_for: Callable[..., Client], submitter: User) -> Client:
    return client_for(submitter)


def test_a_second_view_is_served_from_the_cache(viewer, idea):
    first = _queries(viewer)
    # A hit reads the session, the user and the nav bar's unread count; not the visible areas (its key, cached
    # with it), the tags, count, page of ideas or their tags.
    assert _queries(viewer) == first - 5
    assert idea.key in _list(viewer)


@pytest.mark.parametrize("query", ["", "?status=submitted", "?tag=moe"])
def test_an_edit_is_never_served_stale(viewer, idea, submitter, query):
    _list(viewer, query)
    _list(viewer, query)  # now cached
    services.idea_update(idea=idea, by=submitter, changes={"title": "Renamed latent MoE", "tags": ["moe", "routing"]})
    page = _list(viewer, query)
    assert "Renamed latent MoE" in page and "routing" in page


def test_a_transition_and_a_submitter_rename_are_never_served_stale(viewer, idea, pic, submitter):
    _list(viewer)
    services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic)
    assert 'class="badge badge-triaged"' in _list(viewer)
    submitter.username = "sam-renamed"
    submitter.save()  # as the admin does: no service involved
    assert "by sam-renamed" in _list(viewer)


def test_an_area_rename_is_never_served_stale(viewer, idea, area):
    _list(viewer)
    area.name = "Routers and experts"
    area.save()
    assert "Routers and experts" in _list(viewer)


def test_signing_in_does_not_empty_the_cache(viewer, idea, client_for, pic):
    _list(viewer)
    cached = _queries(viewer)
    client_for(pic).get("/")
    pic.save(update_fields=["last_login"])  # what a sign-in through the form writes
    assert _queries(viewer) == cached


@pytest.fixture
def secret_idea(staff: User, pic: User, make_idea) -> Idea:
    secret = services.area_create(slug="secret", name="Secret project", pic=pic, by=staff, restricted=True)
    return make_idea(area=secret, title="Hidden routing trick", submitter=pic)


def test_a_restricted_areas_ideas_never_reach_someone_who_cannot_see_them(secret_idea, client_for, pic, make_user):
    outsider = client_for(make_user("olga"))
    insider = client_for(pic)
    for query in ("", "?area=secret", "?tag=moe"):
        assert "Hidden routing trick" in _list(insider, query)
        assert "Hidden routing trick" in _list(insider, query)  # cached for the insider's visibility
        page = _list(outsider, query)
        assert "Hidden routing trick" not in page and "Secret project" not in page


def test_restricting_an_area_hides_its_cached_ideas_at_once(idea, area, client_for, make_user):
    outsider = client_for(make_user("olga"))
    assert idea.title in _list(outsider) and idea.title in _list(outsider)
    area.restricted = True
    area.save()
    assert idea.title not in _list(outsider)


def test_leaving_an_area_hides_its_ideas_from_the_leaver(secret_idea, client_for, make_user):
    volunteer = make_user("vera")
    services.area_volunteer(area=secret_idea.area, user=volunteer)
    client = client_for(volunteer)
    assert "Hidden routing trick" in _list(client) and "Hidden routing trick" in _list(client)
    services.area_leave(area=secret_idea.area, user=volunteer)
    assert "Hidden routing trick" not in _list(client)


def test_joining_an_area_or_becoming_staff_shows_its_ideas_at_once(secret_idea, client_for, make_user):
    # The viewer's visible areas are cached too (they are the body's key): both changes must reach them.
    volunteer, promoted = make_user("vera"), make_user("pat")
    for user in (volunteer, promoted):
        client = client_for(user)
        assert "Hidden routing trick" not in _list(client) and "Hidden routing trick" not in _list(client)
    services.area_volunteer(area=secret_idea.area, user=volunteer)
    assert "Hidden routing trick" in _list(client_for(volunteer))
    promoted.is_staff = True
    promoted.save()
    assert "Hidden routing trick" in _list(client_for(promoted))


def test_the_nav_bar_is_each_viewers_own(idea, client_for, pic, submitter):
    first, second = client_for(submitter), client_for(pic)
    _list(first)
    page = _list(second)  # same visibility: the body comes from the first viewer's entry
    assert f"Signed in as {pic.username}" in page and f"Signed in as {submitter.username}" not in page


def test_the_page_works_without_redis(viewer, idea, redis_server):
    _list(viewer)
    redis_server.stop()  # the fixture starts it again after the test
    assert idea.key in _list(viewer)
