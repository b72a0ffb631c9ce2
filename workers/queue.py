"""The queue as the rest of the code sees it: depth, oldest pending age, reachability, and drain requests.

Drain requests are coalesced with a flag in huey's key-value store: a burst of a thousand interactions
enqueues one drain task, not a thousand. The flag is cleared by the drain task *before* it reads the inbox,
and set by the producer *after* its INSERT commits, so every committed row is either seen by a running drain
or followed by a newly enqueued one. A flag whose task was lost (consumer SIGKILLed between dequeue and
clear) goes stale after DRAIN_FLAG_STALE_S and is overridden; the consumer also drains on startup.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from huey.constants import EmptyData
from huey.contrib.djhuey import HUEY

from workers.envelope import envelope_age

DRAIN_FLAG_KEY = "chowist:drain-requested"
DRAIN_FLAG_STALE_S = 10.0


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


def drain_request(*, force: bool = False) -> bool:
    """Make sure a drain task will run after this moment; True when this call enqueued it."""
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
    from workers.tasks import drain_interactions

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
