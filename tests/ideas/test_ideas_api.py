"""REST API: happy paths, every 'bad input' answer of the issue, auth, CSRF and pinned query counts."""
import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.test import Client

from accounts.services import api_token_create
from ideas import services
from ideas.forms import parse_patch_text
from ideas.lifecycle import Status

IDEAS = "/api/v1/ideas/"


@pytest.fixture
def api(client_for, submitter):
    return client_for(submitter)


def test_it_submits_an_idea_and_returns_its_key(api, area):
    response = api.post(IDEAS, {"title": "MTP depth 1", "summary": "One extra head.", "area": area.slug,
                                "recipe_patch": {"mtp.depth": 1}, "tags": ["MTP"]}, content_type="application/json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["key"] == "IDEA-0001" and body["status"] == "submitted" and body["tags"] == ["mtp"]
    assert body["allowed_transitions"] == ["triaged", "rejected", "parked"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"summary": "s", "area": "moe-routing"}, "title"),
        ({"title": "t" * 201, "summary": "s", "area": "moe-routing"}, "title"),
        ({"title": "t", "area": "moe-routing"}, "summary"),
        ({"title": "t", "summary": "s" * 20_001, "area": "moe-routing"}, "summary"),
        ({"title": "t", "summary": "s", "area": "no-such-area"}, "area"),
        ({"title": "t", "summary": "s", "area": "moe-routing", "estimated_gpu_hours": -3}, "estimated_gpu_hours"),
        ({"title": "t", "summary": "s", "area": "moe-routing", "colour": "red"}, "colour"),
    ],
)
def test_bad_fields_are_named_in_a_400(api, area, payload, field):
    response = api.post(IDEAS, payload, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_malformed_recipe_patch_names_the_offending_key(api, area):
    response = api.post(IDEAS, {"title": "t", "summary": "s", "area": area.slug,
                                "recipe_patch": {"moe.latent_size": 64, "moe.num_expert": 16}},
                        content_type="application/json")
    assert response.status_code == 400
    messages = response.json()["recipe_patch"]
    assert len(messages) == 1 and "moe.num_expert" in messages[0] and "moe.num_experts" in messages[0]


def test_an_unknown_key_is_404(api, db):
    assert api.get(f"{IDEAS}IDEA-9999/").status_code == 404
    assert api.get(f"{IDEAS}not-a-key/").status_code == 404


def test_keys_resolve_case_insensitively(api, idea):
    assert api.get(f"{IDEAS}idea-0001/").json()["key"] == "IDEA-0001"


def test_an_illegal_transition_is_409_listing_allowed_targets(client_for, pic, idea):
    response = client_for(pic).post(f"{IDEAS}{idea.key}/transitions/", {"to": "landed"}, content_type="application/json")
    assert response.status_code == 409
    assert response.json()["allowed"] == ["triaged", "rejected", "parked"]


def test_a_non_pic_transition_is_403(client_for, other_pic, idea):
    response = client_for(other_pic).post(f"{IDEAS}{idea.key}/transitions/", {"to": "triaged"},
                                          content_type="application/json")
    assert response.status_code == 403


def test_the_pic_moves_and_closes_with_a_decision(client_for, pic, idea):
    api = client_for(pic)
    url = f"{IDEAS}{idea.key}/transitions/"
    assert api.post(url, {"to": "triaged", "note": "in scope"}, content_type="application/json").status_code == 201
    missing = api.post(url, {"to": "rejected"}, content_type="application/json")
    assert missing.status_code == 400 and "decision" in missing.json()
    closed = api.post(url, {"to": "rejected", "decision": {"summary": "No gain.", "links": ["https://wandb.ai/x"]}},
                      content_type="application/json")
    assert closed.status_code == 201 and closed.json()["decision"]["summary"] == "No gain."
    detail = api.get(f"{IDEAS}{idea.key}/").json()
    assert [t["to_status"] for t in detail["transitions"]] == ["triaged", "rejected"]


def test_an_unknown_target_status_is_400(client_for, pic, idea):
    response = client_for(pic).post(f"{IDEAS}{idea.key}/transitions/", {"to": "shipped"}, content_type="application/json")
    assert response.status_code == 400 and "to" in response.json()


def test_patch_edits_while_submitted_and_refuses_status(api, idea):
    response = api.patch(f"{IDEAS}{idea.key}/", {"title": "Sharper title"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["title"] == "Sharper title"
    sneaky = api.patch(f"{IDEAS}{idea.key}/", {"status": "landed"}, content_type="application/json")
    assert sneaky.status_code == 400 and "status" in sneaky.json()


def test_patch_by_someone_else_is_403(client_for, member, idea):
    response = client_for(member).patch(f"{IDEAS}{idea.key}/", {"title": "Mine now"}, content_type="application/json")
    assert response.status_code == 403


def test_comments_round_trip(api, idea):
    url = f"{IDEAS}{idea.key}/comments/"
    assert api.post(url, {"body": "Seeds?"}, content_type="application/json").status_code == 201
    assert api.post(url, {"body": ""}, content_type="application/json").status_code == 400
    assert [c["body"] for c in api.get(url).json()] == ["Seeds?"]


def test_list_filters_by_area_status_and_text(api, make_idea, other_area, pic):
    first = make_idea(title="Router bias update rate", summary="Faster bias updates.")
    make_idea(title="FP4 last layers in BF16", summary="Keep the tail in bf16.", area=other_area)
    services.idea_transition(idea=first, to_status=Status.TRIAGED, by=pic)

    def keys(**params):
        return [item["key"] for item in api.get(IDEAS, params).json()["results"]]

    assert keys(area="moe-routing") == ["IDEA-0001"]
    assert keys(status="submitted") == ["IDEA-0002"]
    assert keys(q="router") == ["IDEA-0001"]
    assert keys(q="idea-2") == ["IDEA-0002"]
    assert api.get(IDEAS, {"status": "done"}).status_code == 400


def test_areas_are_listed_and_only_staff_create_them(client_for, api, staff, area, member):
    assert [a["slug"] for a in api.get("/api/v1/areas/").json()["results"]] == ["moe-routing"]
    assert api.get("/api/v1/areas/moe-routing/").json()["pic"] == "pia"
    assert api.get("/api/v1/areas/nope/").status_code == 404
    payload = {"slug": "rl", "name": "RL", "pic": member.username}
    assert api.post("/api/v1/areas/", payload, content_type="application/json").status_code == 403
    created = client_for(staff).post("/api/v1/areas/", payload, content_type="application/json")
    assert created.status_code == 201 and created.json()["pic"] == "mona"


def test_anonymous_requests_are_refused(client, idea):
    assert client.get(IDEAS).status_code in (401, 403)


def test_token_auth_works_without_csrf(submitter, area):
    secret = api_token_create(owner=submitter, name="script").secret
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {secret}")
    response = client.post(IDEAS, {"title": "t", "summary": "s", "area": area.slug}, content_type="application/json")
    assert response.status_code == 201


def test_session_auth_without_csrf_token_is_403(client_for, submitter, area):
    client = client_for(submitter, enforce_csrf_checks=True)
    response = client.post(IDEAS, {"title": "t", "summary": "s", "area": area.slug}, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_the_api_list_has_a_constant_query_count(api, make_idea, django_assert_max_num_queries):
    for index in range(30):
        make_idea(title=f"Idea {index}", tags=[f"tag{index}", "shared"])
    # session + user, count, page, tags prefetch
    with django_assert_max_num_queries(5):
        response = api.get(IDEAS)
    assert len(response.json()["results"]) == 30


def test_the_schema_generates(api):
    response = api.get("/api/v1/schema/")
    assert response.status_code == 200 and b"/api/v1/ideas/{key}/transitions/" in response.content


def test_an_idea_may_not_set_the_seed(api, area, client_for, submitter):
    """Issue 12.12: launching refuses an idea that sets train.seed, so submission refuses it, saying why."""
    response = api.post(IDEAS, {"title": "t", "summary": "s", "area": area.slug, "recipe_patch": {"train.seed": 7}},
                        content_type="application/json")
    assert response.status_code == 400
    assert "an idea may not set the seed" in response.json()["recipe_patch"][0]
    page = client_for(submitter).post("/ideas/new/", {"title": "t", "summary": "s", "area": area.pk,
                                                      "recipe_patch": "train.seed = 7"})
    assert page.status_code == 400 and "may not set the seed" in page.content.decode()


def test_a_recipe_patch_may_be_sent_as_the_web_forms_key_value_lines(api, area):
    lines = 'moe.latent_size = 64\n# why: halves the router width\noptim.lr = 3e-4\npattern = "M*ME"\n'

    response = api.post(IDEAS, {"title": "t", "summary": "s", "area": area.slug, "recipe_patch": lines},
                        content_type="application/json")

    assert response.status_code == 201, response.json()
    assert response.json()["recipe_patch"] == {"moe.latent_size": 64, "optim.lr": 0.0003, "pattern": "M*ME"}


@pytest.mark.parametrize("text", ["moe.latent_size 64", "{not json", "[1, 2]"])
def test_unreadable_patch_text_gets_the_web_forms_message(api, area, text):
    with pytest.raises(DjangoValidationError) as form_error:
        parse_patch_text(text)

    response = api.post(IDEAS, {"title": "t", "summary": "s", "area": area.slug, "recipe_patch": text},
                        content_type="application/json")

    assert response.status_code == 400 and response.json() == {"recipe_patch": form_error.value.messages}


def test_a_bad_key_in_patch_lines_is_named_as_in_a_json_patch(api, area):
    answers = [api.post(IDEAS, {"title": "t", "summary": "s", "area": area.slug, "recipe_patch": patch},
                        content_type="application/json") for patch in ("moe.num_expert = 16", {"moe.num_expert": 16})]

    assert [answer.status_code for answer in answers] == [400, 400]
    assert answers[0].json() == answers[1].json() and "moe.num_experts" in answers[0].json()["recipe_patch"][0]
