"""`manage.py backup [--output PATH]`: a consistent copy of the database, safe while the app serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chowist.core.backups import BackupError, backup_create


class Command(BaseCommand):
    help = "Back up the database (SQLite: online backup API; PostgreSQL: pg_dump --format=custom)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="file to write (default: $VAR_DIR/backups/chowist-<db>-<time>)")
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = backup_create(output=options["output"], alias=options["database"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"backed up {result.vendor} to {result.path} ({result.size_bytes} bytes)")
