from django.apps import AppConfig


class InboxConfig(AppConfig):
    """One inbox for every user: in-app messages and their emails, for ideas, studies and compute requests."""

    name = "inbox"
    default_auto_field = "django.db.models.BigAutoField"
