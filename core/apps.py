from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app shares: the error family and its HTTP mapping, the API base view, form and serializer
    helpers, the Redis guard. Imports no domain app."""

    name = "core"
    verbose_name = "Core"
