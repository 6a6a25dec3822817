"""REST API for one's own webhooks (/api/v1/webhooks/): list, create, read, delete, ping, delivery log."""
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ApiView
from inbox import selectors, webhook_services
from inbox.models import Webhook, WebhookDelivery
from inbox.serializers import WebhookCreateSerializer, WebhookDeliverySerializer, WebhookSerializer

_NOT_YOURS = OpenApiResponse(description="No such webhook among yours (another user's webhook looks the same).")


class WebhooksAPIView(ApiView):
    serializer_class = WebhookSerializer

    def get_queryset(self) -> QuerySet[Webhook]:
        return selectors.webhooks_of(self.request.user)

    def webhook(self) -> Webhook:
        return selectors.webhook_get_for_user(user=self.request.user, webhook_id=self.kwargs["webhook_id"])


class WebhookListView(mixins.ListModelMixin, WebhooksAPIView):
    def get(self, request: Request) -> Response:
        return self.list(request)

    @extend_schema(request=WebhookCreateSerializer, responses={
        201: WebhookSerializer, 400: OpenApiResponse(description="Invalid input; the body names each offending field.")})
    def post(self, request: Request) -> Response:
        """Add a webhook; a ping delivery is queued at once, so the receiver can be checked."""
        webhook = webhook_services.webhook_create(owner=request.user, **self.parse(WebhookCreateSerializer, request.data))
        return Response(WebhookSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(WebhooksAPIView):
    @extend_schema(responses={200: WebhookSerializer, 404: _NOT_YOURS})
    def get(self, request: Request, webhook_id: int) -> Response:
        return Response(WebhookSerializer(self.webhook()).data)

    @extend_schema(responses={204: None, 404: _NOT_YOURS})
    def delete(self, request: Request, webhook_id: int) -> Response:
        webhook_services.webhook_delete(webhook=self.webhook())
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookPingView(WebhooksAPIView):
    serializer_class = WebhookDeliverySerializer

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer, 404: _NOT_YOURS})
    def post(self, request: Request, webhook_id: int) -> Response:
        delivery = webhook_services.webhook_ping(webhook=self.webhook())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryListView(mixins.ListModelMixin, WebhooksAPIView):
    """The delivery log, newest first: what was sent, how often it was tried and what the receiver answered."""

    serializer_class = WebhookDeliverySerializer

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        return selectors.webhook_deliveries(self.webhook())

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True), 404: _NOT_YOURS})
    def get(self, request: Request, webhook_id: int) -> Response:
        return self.list(request)
