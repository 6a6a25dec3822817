"""The client's HTTP behaviour over real sockets: retries on 429/503 after Retry-After, which failures are
replayed, typed errors with the API's message, and page iteration. The server is a scripted loopback HTTP
server (tests/support/scripted_server.py); waits are recorded instead of slept."""
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from flightdeck import BadRequest, BudgetRefused, Client, NotFound, PatchConflict, RateLimited, ServerUnreachable
from flightdeck.transport import api_root, retry_after_seconds
from tests.support.scripted_server import Answer, ScriptedServer

OK = Answer(200, {"key": "IDEA-0001"})


def client_for(server: ScriptedServer, waits: list[float], **kwargs) -> Client:
    return Client(server.url, "fd_secret", sleep=waits.append, **kwargs)


def test_it_waits_as_long_as_retry_after_says_then_succeeds():
    waits: list[float] = []
    with ScriptedServer([Answer(429, {"detail": "Request was throttled.", "retry_after": 7},
                                {"Retry-After": "7"}), Answer(503, {}, {"Retry-After": "2"}), OK]) as server:
        idea = client_for(server, waits).ideas.get("IDEA-0001")

    assert idea == {"key": "IDEA-0001"}
    assert waits == [7.0, 2.0]
    assert [r.path for r in server.received] == ["/api/v1/ideas/IDEA-0001/"] * 3
    assert server.received[0].headers["Authorization"] == "Bearer fd_secret"


def test_it_reads_retry_after_as_an_http_date():
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    waits: list[float] = []
    with ScriptedServer([Answer(503, {}, {"Retry-After": format_datetime(later, usegmt=True)}), OK]) as server:
        client_for(server, waits).ideas.get("IDEA-0001")

    assert len(waits) == 1 and 25 <= waits[0] <= 30


def test_it_backs_off_when_the_server_gives_no_retry_after():
    waits: list[float] = []
    with ScriptedServer([Answer(503), Answer(503), OK]) as server:
        client_for(server, waits).ideas.get("IDEA-0001")

    assert waits == [0.5, 1.0]


def test_a_wait_longer_than_allowed_is_raised_at_once_with_the_apis_message():
    waits: list[float] = []
    with ScriptedServer([Answer(429, {"detail": "Request was throttled. Expected available in 600 seconds."},
                                {"Retry-After": "600"})]) as server:
        with pytest.raises(RateLimited) as raised:
            client_for(server, waits, max_retry_wait=60).ideas.get("IDEA-0001")

    assert waits == [] and len(server.received) == 1
    assert raised.value.retry_after == 600
    assert str(raised.value) == "Request was throttled. Expected available in 600 seconds. (retry after 600 s)"


def test_retries_stop_after_max_retries():
    waits: list[float] = []
    with ScriptedServer([Answer(503, {"detail": "Maintenance."}, {"Retry-After": "1"})] * 3) as server:
        with pytest.raises(Exception, match="Maintenance.") as raised:
            client_for(server, waits, max_retries=2).ideas.get("IDEA-0001")

    assert raised.value.status == 503 and waits == [1.0, 1.0] and len(server.received) == 3


def test_a_launch_sends_one_idempotency_key_for_all_its_tries_and_is_replayed_after_a_dropped_connection():
    waits: list[float] = []
    study = {"id": 4, "runs": []}
    with ScriptedServer([Answer(drop=True), Answer(201, study)]) as server:
        answer = client_for(server, waits).studies.launch(baseline="tiny", ideas=["IDEA-0001"], seeds=[0],
                                                         max_steps=4, kind="ablation")

    assert answer == study
    first, second = (r.headers["Idempotency-Key"] for r in server.received)
    assert first == second and len(first) == 36
    assert server.received[0].body == {"kind": "ablation", "baseline": "tiny", "ideas": ["IDEA-0001"], "seeds": [0],
                                       "max_steps": 4, "leave_one_out": False, "resolutions": {}, "title": ""}


def test_each_launch_call_gets_its_own_key_unless_one_is_given():
    with ScriptedServer([Answer(201, {"id": 1})] * 3) as server:
        client = client_for(server, [])
        for key in (None, None, "agent-step-17"):
            client.studies.launch(baseline="b", ideas=["IDEA-0001"], seeds=[0], max_steps=1, idempotency_key=key)

    keys = [r.headers["Idempotency-Key"] for r in server.received]
    assert keys[0] != keys[1] and keys[2] == "agent-step-17"


def test_a_write_without_idempotency_key_is_not_replayed_after_a_dropped_connection():
    with ScriptedServer([Answer(drop=True), Answer(201, {"id": 1})]) as server:
        with pytest.raises(ServerUnreachable, match="no answer from the Flightdeck server"):
            client_for(server, []).ideas.comment("IDEA-0001", "Looks good")

    assert len(server.received) == 1


def test_a_refused_connection_names_the_server():
    with ScriptedServer([]) as server:
        url = server.url
    waits: list[float] = []
    with pytest.raises(ServerUnreachable) as raised:
        Client(url, "t", sleep=waits.append, max_retries=2).ideas.get("IDEA-0001")

    assert str(raised.value) == f"cannot reach the Flightdeck server at {url}/api/v1/ (connection refused)"
    assert waits == [0.5, 1.0]


@pytest.mark.parametrize(("status", "body", "error_type", "message"), [
    (400, {"ideas": ["unknown idea key IDEA-0999"], "seeds": ["seeds must be distinct"]}, BadRequest,
     "ideas: unknown idea key IDEA-0999; seeds: seeds must be distinct"),
    (404, {"detail": "No Idea matches the given query."}, NotFound, "No Idea matches the given query."),
    (409, {"detail": "2 ideas set one key", "conflicts": [{"key": "moe.top_k", "values": []}]}, PatchConflict,
     "2 ideas set one key"),
    (409, {"detail": "The study needs 12.00 GPU-hours; 3.00 are left.", "requested": "12.00", "remaining": "3.00",
           "grant": 7, "can_grant_more": ["pia"]}, BudgetRefused, "The study needs 12.00 GPU-hours; 3.00 are left."),
])
def test_errors_are_typed_and_carry_the_apis_message(status, body, error_type, message):
    with ScriptedServer([Answer(status, body)]) as server:
        with pytest.raises(error_type) as raised:
            client_for(server, []).studies.launch(baseline="b", ideas=["IDEA-0999"], seeds=[0], max_steps=1)

    assert str(raised.value) == message and raised.value.status == status and raised.value.body == body


def test_field_errors_are_kept_by_field():
    body = {"recipe_patch": ["moe.nope: unknown key"], "title": ["This field is required."]}
    with ScriptedServer([Answer(400, body)]) as server:
        with pytest.raises(BadRequest) as raised:
            client_for(server, []).ideas.submit(area="a", title="", summary="s", patch={"moe.nope": 1})

    assert raised.value.field_errors == body


def test_pages_are_fetched_as_consumed_and_next_links_stay_on_the_clients_server():
    first = {"count": 3, "next": "http://elsewhere.example/api/v1/ideas/?area=moe&page=2", "previous": None,
             "results": [{"key": "IDEA-0001"}, {"key": "IDEA-0002"}]}
    second = {"count": 3, "next": None, "previous": "x", "results": [{"key": "IDEA-0003"}]}
    with ScriptedServer([Answer(200, first), Answer(200, second)]) as server:
        ideas = client_for(server, []).ideas.list(area="moe")
        assert next(ideas) == {"key": "IDEA-0001"} and len(server.received) == 1
        assert [idea["key"] for idea in ideas] == ["IDEA-0002", "IDEA-0003"]

    assert [r.path for r in server.received] == ["/api/v1/ideas/?area=moe", "/api/v1/ideas/?area=moe&page=2"]


def test_run_filters_become_config_query_parameters():
    with ScriptedServer([Answer(200, {"count": 0, "next": None, "results": []})]) as server:
        list(client_for(server, []).runs.list(study=3, config={"optim.lr": 0.002, "fp4.enabled": True},
                                             ordering="-final.val_loss"))

    assert server.received[0].path == ("/api/v1/runs/?study=3&ordering=-final.val_loss&config.optim.lr=0.002"
                                       "&config.fp4.enabled=true")


@pytest.mark.parametrize(("typed", "root"), [
    ("127.0.0.1:8000", "http://127.0.0.1:8000/api/v1/"),
    ("http://fd.example/", "http://fd.example/api/v1/"),
    ("https://fd.example/api/v1", "https://fd.example/api/v1/"),
    ("https://fd.example/prefix/api/v1/", "https://fd.example/prefix/api/v1/"),
])
def test_the_api_root_is_found_from_what_people_type(typed, root):
    assert api_root(typed) == root


def test_retry_after_values():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:05 GMT", now=now) == 5.0
    assert retry_after_seconds("Wed, 31 Dec 2025 23:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_an_answer_that_is_not_the_apis_json_names_status_and_url():
    with ScriptedServer([Answer(404, None, {"Content-Type": "text/html"})]) as server:
        with pytest.raises(NotFound) as raised:
            client_for(server, []).runs.compare([1, 2])

    assert str(raised.value) == f"the server answered HTTP 404 for {server.url}/api/v1/runs/compare/?ids=1%2C2"
