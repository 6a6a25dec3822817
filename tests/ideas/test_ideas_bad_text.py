"""Issue 12.2 and 12.9: text the database cannot store (a lone surrogate smuggled in by a JSON escape, NUL)
and absurdly deep JSON are refused with a 400 naming the field, on the API and the pages; nothing is stored."""
import json

import pytest

from ideas.models import Comment, Idea

IDEAS = "/api/v1/ideas/"
SURROGATE = "\ud800"


@pytest.fixture
def api(client_for, submitter):
    return client_for(submitter)


def _post_json(client, url, payload):
    # json.dumps escapes the surrogate as \ud800, exactly as an attacker's body would carry it.
    return client.post(url, json.dumps(payload), content_type="application/json")


@pytest.mark.parametrize("payload, field, named", [
    ({"recipe_patch": {"data.corpus": SURROGATE}}, "recipe_patch", "data.corpus"),
    ({"recipe_patch": {"data.corpus" + SURROGATE: "x"}}, "recipe_patch", "data.corpus"),
    ({"title": "a" + SURROGATE}, "title", ""),
    ({"summary": "nul\x00"}, "summary", ""),
    ({"tags": ["ok", SURROGATE]}, "tags", "1"),
])
def test_the_api_refuses_unstorable_text_naming_the_field(api, area, payload, field, named):
    body = {"title": "a", "summary": "s", "area": area.slug, **payload}
    response = _post_json(api, IDEAS, body)
    assert response.status_code == 400, response.content[:300]
    assert named in response.json()[field][0] and "Unicode" in response.json()[field][0]
    assert not Idea.objects.exists()
    assert api.get(IDEAS).status_code == 200


def test_a_comment_with_a_surrogate_is_refused(api, idea):
    response = _post_json(api, f"{IDEAS}{idea.key}/comments/", {"body": "hi " + SURROGATE})
    assert response.status_code == 400 and "body" in response.json()
    assert not Comment.objects.exists()


def test_the_idea_form_refuses_a_json_patch_with_a_surrogate(client_for, submitter, area):
    response = client_for(submitter).post("/ideas/new/", {
        "title": "a", "summary": "s", "area": area.pk, "recipe_patch": '{"data.corpus": "\\ud800"}'})
    assert response.status_code == 400
    assert "data.corpus" in response.context["form"].errors["recipe_patch"][0]
    assert not Idea.objects.exists()


def test_a_100k_deep_json_body_is_a_400(api, area):
    response = api.post(IDEAS, "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert "deep" in response.json()["detail"]


def test_moderately_deep_json_inside_a_field_is_a_400_too(api, area):
    nested: object = 1
    for _ in range(200):
        nested = [nested]
    response = _post_json(api, IDEAS, {"title": "a", "summary": "s", "area": area.slug, "recipe_patch": nested})
    assert response.status_code == 400 and "recipe_patch" in response.json()
