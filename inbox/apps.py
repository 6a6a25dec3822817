from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class InboxConfig(AppConfig):
    """One inbox for every user: in-app messages and their emails, for ideas, studies and compute requests."""

    name = "inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every app's `notifications` module registers its event sources when imported (`inbox.events.source`),
        # the way admin.py modules register with the admin site; the inbox names no app.
        autodiscover_modules("notifications")
