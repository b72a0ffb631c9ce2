"""`manage.py reencode_photos`: re-encode the photos stored before uploads were (no EXIF, GPS or trailing bytes)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from chowist.places.services import place_photos_reencode


class Command(BaseCommand):
    help = "Re-encode every stored place photo, so none keeps the original's metadata or trailing bytes."

    def handle(self, *args: Any, **options: Any) -> None:
        done, skipped = place_photos_reencode()
        self.stdout.write(f"re-encoded {done} photo(s); {skipped} unreadable one(s) left as they were")
