"""`manage.py seed_editor`: the demo editor account (may change places and upload photos), created or repaired."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from chowist.demo import demo_data


class Command(BaseCommand):
    help = f"Create (or restore the password and permission of) the demo editor {demo_data.DEMO_EDITOR!r}."

    def handle(self, *args: Any, **options: Any) -> None:
        created = demo_data.demo_editor_ensure()
        verb = "created" if created else "kept"
        self.stdout.write(f"{verb} {demo_data.DEMO_EDITOR} (password {demo_data.DEMO_PASSWORD!r}, places.change_place)")
