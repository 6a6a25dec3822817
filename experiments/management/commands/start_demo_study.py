from django.core.management.base import BaseCommand

from experiments.budget import BudgetRefused
from experiments.demo import start_live_demo_study


class Command(BaseCommand):
    help = "Launch the small live integration study of the demo (skipped while one is still running)."

    def handle(self, *args, **options) -> None:
        try:
            study = start_live_demo_study()
        except BudgetRefused as refusal:
            # `make run` goes on without the live study: the site is still useful, and the refusal is the
            # same message a user would see when launching over budget.
            self.stderr.write(f"Live demo study not launched: {refusal}")
            return
        if study is None:
            self.stdout.write("Live demo study: one is still running, or the demo data is not seeded; nothing launched.")
        else:
            self.stdout.write(f"Live demo study {study.label} launched: {study.runs.count()} runs queued.")
