"""Issue 12.6: no double launches. The launch form carries a one-time token and POST /api/v1/studies/ honours
an Idempotency-Key header (same key and body → the first study; same key, other body → 422), tested with
real concurrent requests against gunicorn on PostgreSQL, and documented in the OpenAPI schema."""
import json
import re
import threading

import pytest
from django.conf import settings
from django.test import Client

from accounts.services import api_token_create
from experiments.models import Study
from tests.support.gunicorn_server import SiteClient

STUDIES = "/api/v1/studies/"
TWINS = 4


def _at_once(calls) -> list:
    """Run ``calls`` in threads released together; their results in order."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _body(idea, **changes) -> bytes:
    return json.dumps({"kind": "ablation", "baseline": "tiny-fast", "ideas": [idea.key], "seeds": [0],
                       "max_steps": 4, **changes}).encode()


@pytest.mark.requires_postgres
@pytest.mark.timeout(240)
def test_concurrent_api_launches_with_one_key_make_one_study(gunicorn_server, pic, make_idea, fast_baseline):
    idea = make_idea("Lower LR", {"optim.lr": 0.002})
    secret = api_token_create(owner=pic, name="twins").secret
    server = gunicorn_server(workers=2, threads=2)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json", "Idempotency-Key": "k-1"}

    def launch(body=_body(idea)):
        return lambda: SiteClient(server.url).request("POST", STUDIES, body=body, headers=headers)

    replies = _at_once([launch() for _ in range(TWINS)])
    assert [reply.status for reply in replies] == [201] * TWINS, [reply.text[:300] for reply in replies]
    assert Study.objects.count() == 1
    assert {json.loads(reply.body)["id"] for reply in replies} == {Study.objects.get().pk}
    assert sum(reply.headers.get("Idempotent-Replayed") == "true" for reply in replies) == TWINS - 1

    different = launch(_body(idea, seeds=[1]))()
    assert different.status == 422 and "k-1" in different.text
    assert Study.objects.count() == 1


@pytest.mark.requires_postgres
@pytest.mark.timeout(240)
def test_a_double_submitted_launch_form_makes_one_study(gunicorn_server, pic, make_idea, fast_baseline):
    idea = make_idea("Lower LR", {"optim.lr": 0.002})
    signed_in = Client()
    signed_in.force_login(pic)
    server = gunicorn_server(workers=2, threads=2)
    browser = SiteClient(server.url)
    browser.cookies[settings.SESSION_COOKIE_NAME] = signed_in.cookies[settings.SESSION_COOKIE_NAME].value
    page = browser.get(f"/ideas/{idea.key}/").text
    token = re.search(r'name="launch_token" value="([^"]+)"', page).group(1)
    fields = {"baseline": "tiny-fast", "seeds": "0", "max_steps": "4", "launch_token": token}

    replies = _at_once([lambda: browser.signed_in_copy().post(f"/experiments/ideas/{idea.key}/ablation/", fields)
                        for _ in range(TWINS)])
    assert [reply.status for reply in replies] == [302] * TWINS, [reply.text[-500:] for reply in replies]
    assert Study.objects.count() == 1
    assert {reply.headers["Location"] for reply in replies} == {f"/experiments/studies/{Study.objects.get().pk}/"}


def test_the_same_key_with_another_body_is_refused(client, pic, make_idea, fast_baseline):
    idea = make_idea("Lower LR", {"optim.lr": 0.002})
    client.force_login(pic)
    first = client.post(STUDIES, _body(idea), content_type="application/json", HTTP_IDEMPOTENCY_KEY="abc")
    again = client.post(STUDIES, _body(idea), content_type="application/json", HTTP_IDEMPOTENCY_KEY="abc")
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    other = client.post(STUDIES, _body(idea, max_steps=5), content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="abc")
    assert other.status_code == 422
    assert Study.objects.count() == 1


def test_the_schema_documents_the_idempotency_key(client, pic):
    client.force_login(pic)
    operation = client.get("/api/v1/schema/?format=json").json()["paths"][STUDIES]["post"]
    assert "Idempotency-Key" in [parameter["name"] for parameter in operation["parameters"]]
    assert "422" in operation["responses"]
