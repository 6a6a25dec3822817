"""`Idempotency-Key` on API writes that start work: a repeated delivery answers the first answer instead of
doing the work twice — also when both deliveries race — and a key reused for another request is refused."""
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.models import IdempotentRequest
from experiments import api as experiments_api
from experiments.models import Run, Study
from ideas import services as idea_services
from ideas.models import Idea


def _client(user, key: str | None = None) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    if key:
        client.credentials(HTTP_IDEMPOTENCY_KEY=key)
    return client


@pytest.fixture
def launch_body(pic, area, fast_baseline) -> dict:
    idea = idea_services.idea_create(submitter=pic, area=area, title="Latent MoE", summary="Smaller router.",
                                     recipe_patch={"moe.latent_size": 32})
    return {"kind": "ablation", "baseline": "tiny-fast", "ideas": [idea.key], "seeds": [0], "max_steps": 4}


def test_a_repeated_launch_answers_the_first_study(pic, launch_body):
    client = _client(pic, "launch-1")

    first = client.post("/api/v1/studies/", launch_body, format="json")
    second = client.post("/api/v1/studies/", launch_body, format="json")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Study.objects.count() == 1 and Run.objects.count() == 2


def test_without_a_key_each_launch_is_a_new_study(pic, launch_body):
    for _ in range(2):
        assert _client(pic).post("/api/v1/studies/", launch_body, format="json").status_code == 201

    assert Study.objects.count() == 2 and not IdempotentRequest.objects.exists()


def test_a_key_reused_for_another_request_is_a_422_and_does_nothing(pic, launch_body):
    client = _client(pic, "launch-1")
    client.post("/api/v1/studies/", launch_body, format="json")

    response = client.post("/api/v1/studies/", {**launch_body, "seeds": [0, 1]}, format="json")

    assert response.status_code == 422
    assert response.json() == {"detail": "Idempotency-Key 'launch-1' was already used for a different request; use a new key"}
    assert Study.objects.count() == 1


def test_a_refused_write_stores_nothing_so_the_corrected_one_may_reuse_the_key(pic, launch_body):
    client = _client(pic, "launch-1")

    refused = client.post("/api/v1/studies/", {**launch_body, "max_steps": 0}, format="json")
    accepted = client.post("/api/v1/studies/", launch_body, format="json")

    assert refused.status_code == 400 and accepted.status_code == 201 and Study.objects.count() == 1


def test_keys_belong_to_their_user(pic, volunteer, launch_body):
    for user in (pic, volunteer):
        assert _client(user, "same-key").post("/api/v1/studies/", launch_body, format="json").status_code == 201

    assert Study.objects.count() == 2


def test_an_idea_submission_is_idempotent_too(pic, area):
    body = {"area": area.slug, "title": "Top-1 routing", "summary": "Fewer experts per token."}
    answers = [_client(pic, "idea-1").post("/api/v1/ideas/", body, format="json") for _ in range(2)]

    assert [a.status_code for a in answers] == [201, 201] and answers[0].json()["key"] == answers[1].json()["key"]
    assert Idea.objects.count() == 1


def test_an_overlong_key_is_a_400(pic, launch_body):
    response = _client(pic, "k" * 256).post("/api/v1/studies/", launch_body, format="json")

    assert response.status_code == 400 and "Idempotency-Key" in response.json()


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_racing_deliveries_make_one_study(pic, launch_body, monkeypatch):
    both_working = threading.Barrier(2, timeout=30)
    launch = experiments_api.services.study_launch

    def launch_when_both_are_working(**arguments):
        both_working.wait()  # both deliveries have passed the replay check and are doing the work
        return launch(**arguments)

    monkeypatch.setattr(experiments_api.services, "study_launch", launch_when_both_are_working)
    answers, errors = [], []

    def deliver() -> None:
        try:
            answers.append(_client(pic, "raced").post("/api/v1/studies/", launch_body, format="json"))
        except BaseException as error:  # reported below; a thread cannot fail the test itself
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(a.status_code for a in answers) == [201, 201]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert sorted(a.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    assert Study.objects.count() == 1 and Run.objects.count() == 2
