from django.urls import path

from inbox import api

urlpatterns = [
    path("webhooks/", api.WebhookListView.as_view(), name="api_webhook_list"),
    path("webhooks/<int:webhook_id>/", api.WebhookDetailView.as_view(), name="api_webhook_detail"),
    path("webhooks/<int:webhook_id>/ping/", api.WebhookPingView.as_view(), name="api_webhook_ping"),
    path("webhooks/<int:webhook_id>/deliveries/", api.WebhookDeliveryListView.as_view(), name="api_webhook_deliveries"),
]
