"""Issue 12.8: password reset is rate-limited like sign-in (real Redis) and its email goes out from a Celery
worker, never inside the request."""
import re

import pytest
from django.core import mail
from django.test import Client

from accounts import services

RESET = "/accounts/password_reset/"


def _queued_resets(redis_server) -> list[bytes]:
    with redis_server.client() as broker:
        return [message for message in broker.lrange("default", 0, -1) if b"send_password_reset" in message]


def test_reset_requests_are_limited_per_address_and_send_mail_from_a_worker(client, owner, rates, redis_server):
    redis_server.clear_broker_state()
    rates(password_reset_email="2/1h")
    for _ in range(2):
        assert client.post(RESET, {"email": owner.email}).status_code == 302
    refused = client.post(RESET, {"email": owner.email.upper()})
    assert refused.status_code == 429 and 3500 < int(refused["Retry-After"]) <= 3600
    assert "Too many reset requests" in refused.content.decode()
    assert mail.outbox == [], "no email is sent inside the request"
    assert len(_queued_resets(redis_server)) == 2, "one task per accepted request, none for the refused one"

    assert services.password_reset_email_send(user_id=owner.pk, domain="testserver", use_https=False)
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    follow = Client().get(link, follow=True)
    assert follow.status_code == 200 and "new_password1" in follow.content.decode()


def test_reset_requests_are_limited_per_client_address(client, owner, rates, redis_server):
    rates(password_reset_ip="3/1h")
    for n in range(3):
        assert client.post(RESET, {"email": f"someone{n}@example.org"}).status_code == 302
    assert client.post(RESET, {"email": "another@example.org"}).status_code == 429


def test_a_user_without_a_usable_password_gets_no_mail(owner):
    owner.set_unusable_password()
    owner.save()
    assert not services.password_reset_email_send(user_id=owner.pk, domain="testserver", use_https=False)
    assert mail.outbox == []
