"""`manage.py export_all PATH`: the whole site as JSON lines (see operations/backup.py)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.backup import BackupError, export_all


class Command(BaseCommand):
    help = ("Write ideas, studies, runs, metrics, cycles, users and every other model to PATH as JSON lines "
            "(a directory gets flightdeck-<UTC time>.jsonl.gz; a name ending in .gz is compressed).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="file to write, or an existing directory")

    def handle(self, *, path: Path, **options) -> None:
        try:
            result = export_all(path)
        except (BackupError, OSError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Wrote {sum(result.counts.values())} rows of {len(result.counts)} models to {result.path}")
