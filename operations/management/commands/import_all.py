"""`manage.py import_all FILE [--force]`: restore an export_all backup (see operations/backup.py)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.backup import BackupError, import_all


class Command(BaseCommand):
    help = ("Restore a backup written by export_all into this (empty, migrated) database in one transaction, "
            "reset the id sequences and check every count.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="backup file (.jsonl or .jsonl.gz)")
        parser.add_argument("--force", action="store_true",
                            help="delete the data already in the database (and all sign-in sessions) first")

    def handle(self, *, path: Path, force: bool, **options) -> None:
        if not path.is_file():
            raise CommandError(f"no backup file at {path}")
        try:
            result = import_all(path, force=force, progress=self._progress if options["verbosity"] > 1 else None)
        except (BackupError, OSError, EOFError) as error:  # EOFError: a truncated .gz
            raise CommandError(f"{error} (nothing was changed)") from error
        self.stdout.write(f"Restored {sum(result.counts.values())} rows of {len(result.counts)} models from {path}")

    def _progress(self, label: str, count: int) -> None:
        self.stdout.write(f"  {label}: {count}")
