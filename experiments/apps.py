from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from experiments import notifications
        from inbox import events

        events.register(notifications.STUDY_RUN_ENDED, notifications.study_finished_event)
