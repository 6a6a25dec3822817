"""`GET /api/v1/`: every resource's URL and who is asking; anonymous callers are told to authenticate."""
from rest_framework.test import APIClient

from accounts import services as account_services


def test_the_index_lists_the_resources_and_the_caller(member):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {account_services.api_token_create(owner=member, name='t').secret}")

    body = client.get("/api/v1/").json()

    assert body["user"] == "mona"
    assert body["resources"]["studies"] == "http://testserver/api/v1/studies/"
    assert {"areas", "ideas", "baselines", "studies", "cycles", "pools", "requests", "usage", "tokens"} <= set(body["resources"])
    assert body["schema"] == "http://testserver/api/v1/schema/?format=json"
    assert body["docs"] == "http://testserver/api/v1/docs/"
    answers = {name: client.get(url) for name, url in body["resources"].items()}
    for per_cycle in ("usage", "requests"):  # both default to the current cycle, and this site has none
        assert answers.pop(per_cycle).json() == {"cycle": "there are no cycles yet"}, per_cycle
    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(answers, 200)


def test_anonymous_callers_get_a_401(db):
    response = APIClient().get("/api/v1/")

    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="api"'
