from django.apps import AppConfig


class ComputeConfig(AppConfig):
    name = "compute"
    verbose_name = "Compute"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compute import checks  # noqa: F401 - registers the system checks
