"""``Idempotency-Key`` for API writes that start work (launching a study, resuming a run, submitting an
idea or a compute request): a client that lost the answer may send the same request again with the same key
and gets the first answer back, with ``Idempotent-Replayed: true``, instead of a second study.

The stored answer is written in the same transaction as the work, so either both exist or neither: a request
that failed (4xx) stores nothing and may be retried with its key. Two deliveries racing each other are
serialised by the unique (user, key) constraint: the second waits for the first to commit, fails to insert,
rolls its own work back and replays the first's answer. The same key with a different body is refused (422).
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.models import IdempotentRequest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

# For @extend_schema of the decorated methods.
PARAMETER = OpenApiParameter(HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False, description=(
    "Any unique string (a UUID) per intended write: sending it again returns the first answer instead of "
    "doing the work twice."))
RESPONSES = {422: OpenApiResponse(description=f"The {HEADER} was already used with a different request.")}


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(request: Request, key: str, fingerprint: str) -> Response | None:
    record = IdempotentRequest.objects.filter(user=request.user, key=key).first()
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(f"{HEADER} {key!r} was already used for a different request; use a new key")
    return Response(record.response_body, status=record.status_code, headers={REPLAYED_HEADER: "true"})


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Make an API view's write method honour ``Idempotency-Key`` (see the module docstring)."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return handler(view, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            raise ValidationError({HEADER: [f"at most {MAX_KEY_LENGTH} characters, got {len(key)}"]})
        fingerprint = _fingerprint(request)
        if (replayed := _replay(request, key, fingerprint)) is not None:
            return replayed
        try:
            with transaction.atomic():
                response = handler(view, request, *args, **kwargs)
                if status.is_success(response.status_code):
                    body = json.loads(JSONRenderer().render(response.data))  # as the client received it
                    IdempotentRequest.objects.create(user=request.user, key=key, fingerprint=fingerprint,
                                                     status_code=response.status_code, response_body=body)
                return response
        except IntegrityError:
            # The same key committed by a concurrent delivery while this one worked: answer as it was answered.
            if (replayed := _replay(request, key, fingerprint)) is not None:
                return replayed
            raise

    return wrapper


def once(*, user: Any, key: str, payload: Any, action: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Outside the API (a page form's one-time token): ``action()``'s JSON result, run at most once per
    (user, key); (result, replayed). Same serialisation as ``idempotent``: the row is written in the
    action's transaction, a concurrent twin waits on the unique index and then reads the first result."""
    fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def earlier() -> tuple[dict[str, Any], bool] | None:
        record = IdempotentRequest.objects.filter(user=user, key=key).first()
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(f"{key!r} was already used for a different request")
        return record.response_body, True

    if (found := earlier()) is not None:
        return found
    try:
        with transaction.atomic():
            result = action()
            IdempotentRequest.objects.create(user=user, key=key, fingerprint=fingerprint, status_code=200,
                                             response_body=result)
            return result, False
    except IntegrityError:
        if (found := earlier()) is not None:
            return found
        raise
