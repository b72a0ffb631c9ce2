"""Print queue depth, oldest pending age, inbox backlog and lag percentiles (`make queue-status`).

Here, not in workers/: it reports the interactions pipeline end to end (inbox, queue, consumer).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from chowist.interactions.selectors import inbox_backlog_get, interaction_lag_percentiles
from workers.queue import queue_stats_get
from workers.scrape import consumer_metrics_text, histogram_quantiles

QUANTILES = (0.5, 0.95, 0.99)
DEFAULT_SINCE_S = 300.0


class Command(BaseCommand):
    help = "Queue depth, oldest pending age, inbox backlog, job lag (from the consumer) and interaction lag (from the inbox)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
        window = parser.add_mutually_exclusive_group()
        window.add_argument(
            "--since",
            type=float,
            default=DEFAULT_SINCE_S,
            help=f"interaction lag of rows accepted in the last SECONDS (default {DEFAULT_SINCE_S:g})",
        )
        window.add_argument("--after", type=float, help="interaction lag of rows accepted after this Unix time")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["after"] is not None:
            since = datetime.fromtimestamp(options["after"], tz=UTC)
            title = f"interaction lag (accepted after {since.isoformat()})"
        else:
            since = timezone.now() - timedelta(seconds=options["since"])
            title = f"interaction lag (accepted in the last {options['since']:g} s)"
        status = queue_status_collect(created_since=since)
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, sort_keys=True))
            return
        queue, inbox = status["queue"], status["inbox"]
        lines = [
            f"queue ({status['backend']}): depth {queue['depth']}, scheduled {queue['scheduled']}, "
            f"oldest pending {queue['oldest_pending_age_s']:.3f} s",
            f"inbox: backlog {inbox['backlog']}, oldest pending {inbox['oldest_pending_age_s']:.3f} s",
            _lag_line(title, status["interaction_lag_s"]),
        ]
        if status["job_lag_s"] is None:
            lines.append(f"job lag: consumer metrics unreachable ({status['consumer_metrics_error']})")
        else:
            lines.extend(_lag_line(f"job lag {task}", entry) for task, entry in status["job_lag_s"].items())
            if not status["job_lag_s"]:
                lines.append("job lag: no task has run since the consumer started")
        self.stdout.write("\n".join(lines))


def queue_status_collect(*, created_since: datetime) -> dict[str, Any]:
    stats = queue_stats_get()
    backlog = inbox_backlog_get()
    status: dict[str, Any] = {
        "backend": "redis" if settings.REDIS_URL else "sqlite",
        "queue": {
            "depth": stats.depth,
            "scheduled": stats.scheduled,
            "oldest_pending_age_s": stats.oldest_pending_age_s,
        },
        "inbox": {"backlog": backlog.pending, "oldest_pending_age_s": backlog.oldest_pending_age_s},
        "interaction_lag_s": interaction_lag_percentiles(created_since=created_since, quantiles=QUANTILES),
        "job_lag_s": None,
        "consumer_metrics_error": None,
    }
    try:
        text = consumer_metrics_text(addr=settings.METRICS_ADDR, port=settings.CONSUMER_METRICS_PORT)
    except OSError as exc:
        status["consumer_metrics_error"] = str(exc)
    else:
        status["job_lag_s"] = histogram_quantiles(text=text, metric="chowist_job_lag_seconds", quantiles=QUANTILES)
    return status


def _lag_line(title: str, entry: dict[str, Any]) -> str:
    parts = [f"{key} {value:.3f} s" if isinstance(value, float) else f"{key} {value}" for key, value in entry.items()]
    return f"{title}: " + ", ".join(parts)
