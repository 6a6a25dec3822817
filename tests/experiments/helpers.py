"""Polling helper for tests that watch real workers."""
import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from rest_framework.test import APIClient

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def runs_when_done(study) -> list:
    """The study's runs once none is queued, starting, running or preempted (about to resume), else []."""
    from experiments.models import LIVE_STATES, Run, RunStatus

    runs = list(Run.objects.filter(study=study).order_by("id"))
    return [] if any(run.status in (*LIVE_STATES, RunStatus.PREEMPTED) for run in runs) else runs


def api_client_for(user) -> APIClient:
    """A REST client signed in as ``user`` (token checks are the accounts tests' business)."""
    client = APIClient()
    client.force_authenticate(user)
    return client
