"""Outgoing webhooks: signed POSTs of the inbox's events to a real HTTP receiver, retried with backoff by a real
Celery worker, each delivery once per event, a delivery log; pages and API for the owner only; address checks."""
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from experiments import services as experiment_services
from experiments.execution import attempts
from experiments.models import RunStatus
from ideas import services as idea_services
from ideas.lifecycle import Status
from inbox import events, webhook_services, webhooks
from inbox.events import Event
from inbox.models import Message, OutboxEvent, Webhook, WebhookDelivery
from tests.support.people import PASSWORD
from tests.support.processes import wait_until
from tests.support.scripted_server import Answer, ScriptedServer

SECRET = "s3cret"


# ------------------------------------------------------------------------------------------ signature, addresses


def test_a_receiver_can_verify_the_signature_and_refuses_tampering_and_replays():
    body = webhooks.encode({"event": "ping"})
    now = int(time.time())
    header = webhooks.signature(SECRET, now, body)

    assert webhooks.verify(SECRET, header, body)
    assert not webhooks.verify(SECRET, header, body + b" ")
    assert not webhooks.verify("other", header, body)
    assert not webhooks.verify(SECRET, header, body, now=now + webhooks.SIGNATURE_TOLERANCE_SECONDS + 1)
    assert not webhooks.verify(SECRET, "v1=abc", body)


@pytest.mark.parametrize("url, message", [
    ("ftp://example.org/hook", "starts with https://"),
    ("https:///hook", "needs a host"),
    ("https://bob:pw@example.org/hook", "may not carry a user name or password"),
])
def test_urls_that_cannot_be_webhooks_are_refused(url, message):
    with pytest.raises(webhooks.RefusedAddress, match=message):
        webhooks.check_url(url)


def test_private_addresses_are_refused_at_send_time_unless_allowed(settings):
    settings.FLIGHTDECK_WEBHOOK_ALLOW_PRIVATE = False
    outcome = webhooks.post(url="http://127.0.0.1:9/hook", secret=SECRET, kind="ping", delivery_id=1, payload={})

    assert not outcome.delivered and not outcome.retry
    assert outcome.error == "127.0.0.1 resolves to 127.0.0.1, which is not a public address"


# ------------------------------------------------------------------------------------------------ services


def test_create_names_each_bad_field(db, pic):
    with pytest.raises(ValidationError) as refused:
        webhook_services.webhook_create(owner=pic, name=" ", url="gopher://x", kinds=["idea_moved"])
    errors = refused.value.message_dict
    assert errors["name"] == ["Give the webhook a name, e.g. the channel it posts to."]
    assert errors["url"] == ["a webhook URL starts with https:// (or http://), got 'gopher://x'"]
    assert errors["kinds"][0].startswith("unknown event kind 'idea_moved'; allowed: idea_submitted,")
    assert not Webhook.objects.exists()


def test_an_event_queues_one_delivery_per_hearing_webhook_of_its_recipients_once(db, pic, member):
    everything = webhook_services.webhook_create(owner=pic, name="all", url="https://example.org/a")
    studies_only = webhook_services.webhook_create(owner=pic, name="studies", url="https://example.org/s",
                                                   kinds=[Message.Kind.STUDY_FINISHED])
    webhook_services.webhook_create(owner=member, name="not a recipient", url="https://example.org/m")
    event = Event(kind=Message.Kind.IDEA_TRANSITION, key="idea-move:1", recipient_ids=frozenset({pic.pk}),
                  subject="IDEA-0001 moved", body="to triaged", link="/ideas/IDEA-0001/")

    assert webhook_services.deliveries_queue(event) == 1
    assert webhook_services.deliveries_queue(event) == 0  # a redelivered event

    [delivery] = WebhookDelivery.objects.exclude(kind="ping")  # each new webhook got a ping besides
    assert delivery.webhook == everything and delivery.status == "pending" and delivery.attempts == 0
    assert delivery.payload == {"event": "idea_transition", "key": "idea-move:1", "subject": "IDEA-0001 moved",
                                "body": "to triaged", "url": "http://127.0.0.1:8000/ideas/IDEA-0001/",
                                "sent_by": "flightdeck"}
    assert not studies_only.deliveries.exclude(kind="ping").exists()


def test_a_refused_receiver_fails_the_delivery_and_a_retryable_one_stays_pending(db, pic):
    hook = webhook_services.webhook_create(owner=pic, name="flaky", url="http://127.0.0.1:1/hook")
    with ScriptedServer([Answer(503), Answer(404)]) as receiver:
        Webhook.objects.filter(pk=hook.pk).update(url=f"{receiver.url}/hook")
        delivery = webhook_services.webhook_ping(webhook=hook)

        first = webhook_services.delivery_attempt(delivery.pk, final=False)
        assert (first.status, first.attempts, first.response_code) == ("pending", 1, 503)
        second = webhook_services.delivery_attempt(delivery.pk, final=False)
        assert (second.status, second.attempts, second.error) == ("failed", 2, "HTTP 404")
        assert webhook_services.delivery_attempt(delivery.pk, final=False) is None  # no longer pending
    assert len(receiver.received) == 2


def test_the_outbox_task_hands_over_deliveries_whose_message_was_lost(db, pic, redis_server):
    hook = webhook_services.webhook_create(owner=pic, name="chat", url="https://example.org/h")
    lost, fresh, retrying = (webhook_services.webhook_ping(webhook=hook) for _ in range(3))
    long_ago = timezone.now() - timedelta(hours=1)
    WebhookDelivery.objects.filter(pk__in=[lost.pk, retrying.pk]).update(created_at=long_ago)
    WebhookDelivery.objects.filter(pk=retrying.pk).update(attempts=1, last_attempt_at=timezone.now())

    assert webhook_services.deliveries_resend() == 1  # the lost one; the fresh one may still be on its way


# --------------------------------------------------------------------------------- real worker and receiver


def test_a_real_worker_posts_a_signed_event_and_retries_after_a_server_error(celery_worker, idea, pic, submitter):
    with ScriptedServer([Answer(200), Answer(500), Answer(200)]) as receiver:
        # The submitter watches the idea, so hears of the PIC's move (the actor is never told).
        hook = webhook_services.webhook_create(owner=submitter, name="#fp4-team", url=f"{receiver.url}/hook",
                                               kinds=[Message.Kind.IDEA_TRANSITION])
        wait_until(lambda: hook.deliveries.filter(kind="ping", status="delivered").exists(), timeout=60,
                   what="the first ping", alive=celery_worker.is_running, log=celery_worker.log_path)
        idea_services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic, note="in scope")

        deliveries = WebhookDelivery.objects.filter(webhook=hook, kind="idea_transition")
        wait_until(lambda: deliveries.filter(status="delivered").exists(), timeout=90,
                   what="the retried webhook delivery", alive=celery_worker.is_running, log=celery_worker.log_path)

    delivery = deliveries.get()
    assert (delivery.attempts, delivery.response_code, delivery.error) == (2, 200, "")
    moves = receiver.received[1:]
    assert [r.headers["X-Flightdeck-Delivery"] for r in moves] == [str(delivery.pk)] * 2
    for request in moves:
        assert request.headers["X-Flightdeck-Event"] == "idea_transition"
        assert webhooks.verify(hook.secret, request.headers["X-Flightdeck-Signature"], request.raw)
    payload = receiver.received[-1].body
    assert payload["event"] == "idea_transition" and payload["url"].endswith(f"/ideas/{idea.key}")
    assert payload["subject"].startswith(f"[{idea.key}] pia moved Latent MoE")


def test_a_failed_run_is_an_event_for_its_launcher(db, pic, idea, fast_baseline):
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key],
                                             seeds=[0], max_steps=4)
    attempt = study.runs.first().attempts.get()
    attempts.attempt_claim(attempt.pk, host="w1", slot_ids=None)
    attempts.attempt_finish(attempt.pk, host="w1", state=RunStatus.FAILED, reason="exit code 1: CUDA OOM")

    assert OutboxEvent.objects.filter(source="run_failed", ref=attempt.pk).exists()
    event = events.build("run_failed", attempt.pk)
    run = attempt.run
    assert event.kind == "run_failed" and event.recipient_ids == {pic.pk}
    assert event.subject == f"[{study.label}] run {run.public_id} failed"
    assert "Reason: exit code 1: CUDA OOM" in event.body and event.link == run.get_absolute_url()


# ------------------------------------------------------------------------------------------------ pages, API


def test_the_pages_add_show_and_delete_a_webhook_for_its_owner_only(db, pic, member):
    owner, stranger = Client(), Client()
    owner.force_login(pic)
    stranger.force_login(member)

    refused = owner.post("/inbox/webhooks/", {"name": "chat", "url": "ftp://chat.example.org/hook"})
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "starts with https://" in html and 'value="ftp://chat.example.org/hook"' in html

    added = owner.post("/inbox/webhooks/", {"name": "chat", "url": "https://chat.example.org/hook",
                                            "kinds": ["study_finished", "run_failed"]})
    hook = Webhook.objects.get()
    assert added.status_code == 302 and added["Location"] == f"/inbox/webhooks/{hook.pk}/"
    assert hook.kinds == ["study_finished", "run_failed"]
    detail = owner.get(f"/inbox/webhooks/{hook.pk}/").content.decode()
    assert hook.secret in detail and "ping" in detail  # the first ping is in the log
    assert owner.get("/inbox/webhooks/").content.decode().count("chat.example.org") == 1

    assert stranger.get(f"/inbox/webhooks/{hook.pk}/").status_code == 404
    for action in ("ping", "delete"):
        assert stranger.post(f"/inbox/webhooks/{hook.pk}/{action}/").status_code == 404
    assert owner.post(f"/inbox/webhooks/{hook.pk}/delete/").status_code == 302
    assert not Webhook.objects.exists()


def test_the_api_lists_creates_pings_and_logs_for_the_owner_only(db, pic, member):
    api, other = APIClient(), APIClient()
    api.force_authenticate(pic)
    other.force_authenticate(member)

    unknown = api.post("/api/v1/webhooks/", {"name": "x", "url": "https://e.org/h", "colour": 1}, format="json")
    assert unknown.status_code == 400 and set(unknown.json()) == {"colour"}
    bad = api.post("/api/v1/webhooks/", {"name": "x", "url": "ftp://e.org/h", "kinds": ["nope"]}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"kinds"}  # the serializer's check comes first
    created = api.post("/api/v1/webhooks/", {"name": "chat", "url": "https://e.org/h", "kinds": ["run_failed"]},
                       format="json")
    assert created.status_code == 201
    hook = created.json()
    assert hook["kinds"] == ["run_failed"] and len(hook["secret"]) == 64
    assert [w["id"] for w in api.get("/api/v1/webhooks/").json()["results"]] == [hook["id"]]
    assert other.get("/api/v1/webhooks/").json()["results"] == []

    pinged = api.post(f"/api/v1/webhooks/{hook['id']}/ping/")
    assert pinged.status_code == 202 and pinged.json()["kind"] == "ping"
    log = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()["results"]
    assert [d["kind"] for d in log] == ["ping", "ping"]  # the one on creation and this one
    for url in (f"/api/v1/webhooks/{hook['id']}/", f"/api/v1/webhooks/{hook['id']}/deliveries/"):
        assert other.get(url).status_code == 404
    assert other.delete(f"/api/v1/webhooks/{hook['id']}/").status_code == 404
    assert api.delete(f"/api/v1/webhooks/{hook['id']}/").status_code == 204
    assert api.get("/api/v1/").json()["resources"]["webhooks"].endswith("/api/v1/webhooks/")


def test_adding_a_webhook_in_a_browser_pings_the_receiver(browser_page, screenshot, celery_worker, submitter,
                                                         live_server):
    page = browser_page
    with ScriptedServer([Answer(200)]) as receiver:
        page.goto("/accounts/login/")
        page.fill("#id_username", submitter.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/")
        page.goto("/inbox/")
        page.click("text=Manage webhooks")
        page.fill("#id_name", "#fp4-team")
        page.fill("#id_url", f"{receiver.url}/hook")
        page.check("input[value=study_finished]")
        page.click("button:has-text('Add webhook')")
        page.wait_for_selector("text=Delivery log")
        hook = Webhook.objects.get()
        wait_until(lambda: hook.deliveries.filter(status="delivered").exists(), timeout=60, what="the first ping",
                   alive=celery_worker.is_running, log=celery_worker.log_path)
        page.reload()
        assert page.locator(f"#delivery-{hook.deliveries.get().pk} .badge").inner_text() == "delivered"
        screenshot(page, "webhook detail")
    assert receiver.received[0].body["event"] == "ping"
