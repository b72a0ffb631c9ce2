from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chowist.demo import demo_data

SIZES = ("places", "users", "reviews", "interactions")


class Command(BaseCommand):
    help = (
        "Load deterministic demo data (places, users, reviews, interactions). Idempotent: a re-run adds only "
        "what is missing and never deletes anything."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--places", type=int, default=demo_data.DEFAULT_PLACES)
        parser.add_argument("--users", type=int, default=demo_data.DEFAULT_USERS)
        parser.add_argument("--reviews", type=int, default=demo_data.DEFAULT_REVIEWS)
        parser.add_argument("--interactions", type=int, default=demo_data.DEFAULT_INTERACTIONS)
        parser.add_argument("--seed", type=int, default=demo_data.DEFAULT_SEED)

    def handle(self, *args: Any, **options: Any) -> None:
        negative = [f"--{name} {options[name]}" for name in SIZES if options[name] < 0]
        if negative:
            raise CommandError(f"sizes cannot be negative: {', '.join(negative)}")
        started = time.monotonic()

        def progress(message: str) -> None:
            if options["verbosity"] >= 2:
                self.stdout.write(f"{time.monotonic() - started:6.1f}s {message}")

        try:
            report = demo_data.seed_demo(
                places=options["places"],
                users=options["users"],
                reviews=options["reviews"],
                interactions=options["interactions"],
                seed=options["seed"],
                progress=progress,
            )
        except KeyError as exc:
            raise CommandError(f"demo data is inconsistent with the database: {exc}") from exc
        added = (
            ", ".join(f"{table} {rows}" for table, rows in report.added.items() if rows) or "nothing (already seeded)"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_demo: added {added} in {time.monotonic() - started:.1f}s (seed {options['seed']})"
            )
        )
        self.stdout.write(f"demo users: {demo_data.demo_username(0)}.. password {demo_data.DEMO_PASSWORD!r}")
