from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compute import evidence as compute_evidence
        from experiments.evidence import ComputeEvidence

        compute_evidence.register(ComputeEvidence())
