from django.apps import AppConfig


class IdeasConfig(AppConfig):
    name = "ideas"
    verbose_name = "Ideas"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ideas import list_cache

        list_cache.connect()
