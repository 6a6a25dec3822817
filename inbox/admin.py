from django.contrib import admin

from inbox.models import EmailPreference, Message


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
