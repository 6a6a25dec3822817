"""Issue 12.3: an idea the caller may not see answers POST /api/v1/studies/ exactly like a missing one,
before any other check: no 403 instead of 400, no conflict message that reads the hidden idea's patch."""
import pytest
from rest_framework.test import APIClient

from ideas import services as idea_services

STUDIES = "/api/v1/studies/"


@pytest.fixture
def hidden_idea(staff, make_user):
    secret_pic = make_user("secretive")
    vault = idea_services.area_create(slug="vault", name="Vault", pic=secret_pic, by=staff, restricted=True)
    return idea_services.idea_create(submitter=secret_pic, area=vault, title="Secret latent", summary="s",
                                     recipe_patch={"moe.latent_size": 16, "optim.lr": 0.01})


def _post(user, body) -> tuple[int, str]:
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(STUDIES, body, format="json")
    return response.status_code, response.content.decode()


def test_a_hidden_idea_answers_like_a_missing_one(pic, hidden_idea, fast_baseline):
    base = {"kind": "ablation", "baseline": "tiny-fast", "seeds": [0], "max_steps": 4}
    hidden = _post(pic, {**base, "ideas": [hidden_idea.key]})
    missing = _post(pic, {**base, "ideas": ["IDEA-0999"]})
    assert hidden[0] == missing[0] == 400
    assert hidden[1].replace(hidden_idea.key, "IDEA-0999") == missing[1]


def test_a_conflict_never_reveals_what_a_hidden_idea_sets(pic, hidden_idea, make_idea, fast_baseline):
    mine = make_idea("Mine", {"moe.latent_size": 64})
    status, body = _post(pic, {"kind": "integration", "baseline": "tiny-fast", "seeds": [0], "max_steps": 4,
                               "ideas": [mine.key, hidden_idea.key], "resolutions": {"optim.lr": 0.5}})
    assert status == 400 and "unknown idea key" in body
    assert "latent_size" not in body and "optim.lr" not in body.replace('"optim.lr"', "")
