from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string

from inbox.events import muted


class Command(BaseCommand):
    help = "Load demo data (idempotent): runs every seeder in settings.FLIGHTDECK_DEMO_SEEDERS in order."

    def handle(self, *args, **options) -> None:
        # Demo data tells no one: finished demo studies and reviewed demo requests would flood the inbox.
        with muted():
            for path in settings.FLIGHTDECK_DEMO_SEEDERS:
                self.stdout.write(f"Seeding {path} …")
                import_string(path)()
