"""The `consumer_paused` fault: the consumer starts no task while it is on.

The consumer's dequeue is what is paused, not the task: while the flag is on every poll reports an empty
queue, so tasks stay in the queue storage (depth, oldest-pending age and lag grow; a SIGKILL loses nothing)
and start within one poll interval (HUEY_MAX_DELAY_S) of the flag being cleared. The flag is re-read at
most every faults.FAULTS_RECHECK_S, so the check costs one clock read per poll.
"""

from __future__ import annotations

from typing import Any

import structlog
from huey import Huey

from chowist.core import faults
from chowist.core.fault_injection import db_latency_install

log = structlog.get_logger(__name__)
_INSTALLED = "_chowist_pause_installed"


def consumer_pause_install(huey: Huey) -> None:
    """Make `huey.dequeue` honour consumer_paused (idempotent), and apply db_latency in the consumer."""
    if getattr(huey, _INSTALLED, False):
        return
    original_dequeue = huey.dequeue
    paused = [False]

    def dequeue() -> Any:
        now_paused = faults.fault_get(faults.CONSUMER_PAUSED) is not None
        if now_paused != paused[0]:
            paused[0] = now_paused
            log.info("consumer_paused" if now_paused else "consumer_resumed", fault=faults.CONSUMER_PAUSED)
        if now_paused:
            return None
        return original_dequeue()

    huey.dequeue = dequeue  # type: ignore[method-assign]
    setattr(huey, _INSTALLED, True)

    @huey.on_startup(name="chowist_fault_db_latency")
    def _db_latency() -> None:
        # The consumer has no request middleware: db_latency goes on each worker thread's connections.
        db_latency_install()
