"""The REST API's shared parts: the one exception handler (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``) and the
base view every app's API views derive from.

Error mapping, here and nowhere else: ``ApplicationError`` → its ``status_code`` with ``{"detail", **details}``;
django ``ValidationError`` → 400 keyed by field (``non_field_errors`` without one); the rest is DRF's
(PermissionDenied → 403, Http404 → 404, ...), plus ``retry_after`` (whole seconds) in the body of a 429 for
clients that read JSON only.
"""
import math
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import generics, serializers
from rest_framework.exceptions import Throttled
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.errors import ApplicationError


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response({"detail": exc.message, **exc.details}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = serializers.ValidationError(detail)
    response = drf_exception_handler(exc, context)
    if isinstance(exc, Throttled) and response is not None and exc.wait is not None:
        response.data["retry_after"] = math.ceil(exc.wait)
    return response


class ApiView(generics.GenericAPIView):
    """Signed-in callers only; ``parse`` validates input with a serializer and returns the plain values."""

    permission_classes = [IsAuthenticated]

    def parse(self, serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
        serializer = serializer_class(data=data, context=self.get_serializer_context(), **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
