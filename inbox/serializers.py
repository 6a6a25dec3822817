"""API shapes of webhooks and their deliveries."""
from rest_framework import serializers

from core.serializers import StrictSerializer
from inbox.models import Message, Webhook, WebhookDelivery


class WebhookSerializer(serializers.ModelSerializer):
    """The secret is shown to the owner (the only one who can read a webhook): receivers need it to verify."""

    class Meta:
        model = Webhook
        fields = ["id", "name", "url", "kinds", "active", "secret", "created_at"]


class WebhookCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=500)
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=Message.Kind.choices), required=False,
                                  default=list, help_text="event kinds it hears; all when empty")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_key", "kind", "status", "attempts", "response_code", "error", "payload", "created_at",
                  "last_attempt_at", "delivered_at"]
