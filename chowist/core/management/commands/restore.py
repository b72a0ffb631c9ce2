"""`manage.py restore PATH [--force]`: replace the database with a backup (refuses a non-empty one unless forced)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chowist.core.backups import BackupError, backup_restore


class Command(BaseCommand):
    help = "Restore the database from a file written by `manage.py backup`. Stop the app first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the backup file")
        parser.add_argument("--force", action="store_true", help="replace a database that already holds tables")
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            replaced = backup_restore(source=options["path"], force=options["force"], alias=options["database"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        note = f" (replaced {len(replaced)} tables)" if replaced else ""
        self.stdout.write(f"restored {options['path']}{note}")
