"""The interactions' background tasks, and the drain-request protocol that enqueues them.

Drain requests are coalesced with a flag in huey's key-value store: a burst of a thousand interactions
enqueues one drain task, not a thousand. The flag is cleared by the drain task *before* it reads the inbox,
and set by the producer *after* its INSERT commits, so every committed row is either seen by a running drain
or followed by a newly enqueued one. A flag whose task was lost (consumer SIGKILLed between dequeue and
clear) goes stale after DRAIN_FLAG_STALE_S and is overridden; the consumer also drains on startup, and
`refresh_popular` drains every minute.
"""

from __future__ import annotations

import time

from django.conf import settings
from huey import crontab
from huey.constants import EmptyData
from huey.contrib.djhuey import HUEY

from chowist.interactions.drain import DRAIN_TASK_MAX_S, inbox_prune, interactions_drain
from chowist.interactions.selectors import popular_cache_warm
from workers.jobs import job

DRAIN_FLAG_KEY = "chowist:drain-requested"
DRAIN_FLAG_STALE_S = 10.0
# The periodic refresh drains for at most this long before warming the popular lists.
REFRESH_DRAIN_MAX_S = DRAIN_TASK_MAX_S
# Where these tasks lived until issue 11: messages queued by that version still run after the deploy.
_BEFORE_ISSUE_11 = "workers.tasks"


@job(moved_from=_BEFORE_ISSUE_11)
def drain_interactions() -> int:
    """Count what is waiting in the interactions inbox; hand over to a fresh task if a backlog remains."""
    drain_request_clear()
    result = interactions_drain()
    if result.backlog_left:
        drain_request(delay_s=0)
    return result.counted


@job(schedule=crontab(minute="*"), moved_from=_BEFORE_ISSUE_11)
def refresh_popular() -> int:
    """Every minute: count anything a lost drain task left behind, then recompute and warm the popular lists.

    One drain, bounded by REFRESH_DRAIN_MAX_S: under a sustained write rate a loop "until no backlog" never
    ended, held a worker thread (starving e-mails and thumbnails) and blocked a graceful stop. A backlog left
    is handed to the drain task.
    """
    result = interactions_drain(max_seconds=REFRESH_DRAIN_MAX_S)
    if result.backlog_left:
        drain_request(delay_s=0)
    popular_cache_warm()
    return result.counted


@job(schedule=crontab(minute="17"))
def prune_inbox() -> int:
    """Hourly: delete inbox rows counted more than INTERACTIONS_RETENTION_DAYS ago (pending rows are never touched)."""
    return inbox_prune(retention_days=settings.INTERACTIONS_RETENTION_DAYS)


def drain_request(*, force: bool = False, delay_s: float | None = None) -> bool:
    """Make sure a drain task will run after this moment; True when this call enqueued it.

    The drain waits `delay_s` (default INTERACTIONS_DRAIN_DELAY_S) so that the interactions of that window share
    it; a backlog handed over, or what a restart left pending, is drained at once (delay_s=0).
    """
    storage = HUEY.storage
    now = time.time()
    stamp = str(now).encode()
    if force:
        storage.put_data(DRAIN_FLAG_KEY, stamp)
    else:
        current = storage.peek_data(DRAIN_FLAG_KEY)
        if current is not EmptyData:
            if now - _flag_time(current) < DRAIN_FLAG_STALE_S:
                return False
            storage.put_data(DRAIN_FLAG_KEY, stamp)
        elif not storage.put_if_empty(DRAIN_FLAG_KEY, stamp):
            return False
    delay = settings.INTERACTIONS_DRAIN_DELAY_S if delay_s is None else delay_s
    if delay > 0 and not HUEY.immediate:
        drain_interactions.schedule(delay=delay)
    else:
        drain_interactions()
    return True


def drain_request_clear() -> None:
    """Called by the drain task before it reads the inbox: later INSERTs must enqueue another drain."""
    HUEY.storage.delete_data(DRAIN_FLAG_KEY)


def _flag_time(raw: bytes | memoryview) -> float:
    try:
        return float(bytes(raw))
    except ValueError:
        return 0.0
