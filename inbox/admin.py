from django.contrib import admin

from inbox.models import EmailPreference, Message, Webhook, WebhookDelivery


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipient", "kind", "subject", "read_at", "emailed_at")
    list_filter = ("kind",)
    search_fields = ("subject", "recipient__username", "dedupe_key")
    raw_id_fields = ("recipient",)
    readonly_fields = ("dedupe_key", "created_at", "emailed_at")


@admin.register(EmailPreference)
class EmailPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "enabled", "updated_at")
    raw_id_fields = ("user",)


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "url", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "url", "owner__username")
    raw_id_fields = ("owner",)
    readonly_fields = ("secret", "created_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "webhook", "kind", "status", "attempts", "response_code")
    list_filter = ("status", "kind")
    raw_id_fields = ("webhook",)
    readonly_fields = ("event_key", "payload", "created_at", "last_attempt_at", "delivered_at")
