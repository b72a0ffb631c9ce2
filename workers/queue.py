"""The queue as the rest of the code sees it: depth, oldest pending age, reachability."""

from __future__ import annotations

from dataclasses import dataclass

from huey.contrib.djhuey import HUEY

from workers.telemetry import envelope_age


@dataclass(frozen=True)
class QueueStats:
    depth: int
    scheduled: int
    oldest_pending_age_s: float


def queue_stats_get() -> QueueStats:
    """Tasks waiting to run now, tasks scheduled for later (retries), and the age of the next one to run."""
    storage = HUEY.storage
    depth = storage.queue_size()
    oldest = 0.0
    if depth:
        head = storage.enqueued_items(limit=1)
        if head:
            oldest = envelope_age(data=bytes(head[0]), deserialize=HUEY.deserialize_task) or 0.0
    return QueueStats(depth=depth, scheduled=storage.schedule_size(), oldest_pending_age_s=oldest)


def queue_check() -> None:
    """Readiness: raise unless the queue storage answers."""
    HUEY.storage.queue_size()
