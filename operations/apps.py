from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Running Flightdeck for months: health and readiness, Prometheus metrics, backups."""

    name = "operations"
    default_auto_field = "django.db.models.BigAutoField"
