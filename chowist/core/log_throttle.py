"""At most one log line per interval for an error that repeats (an outage fails every request the same way), each
line saying how many it stands for: the database's 503s (chowist/core/unavailable.py) and a cache that does not
answer (chowist/core/cache_backends.py)."""

from __future__ import annotations

import threading
import time


class LogThrottle:
    """At most one log line per `interval_s`; each line carries how many were suppressed since the last one.

    Shared by the threads of a process (gunicorn's gthread workers), hence the lock.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last_logged: float | None = None
        self._suppressed = 0

    def allow(self, now: float | None = None) -> int | None:
        """How many were suppressed before this one when it should be logged, else None (counted as suppressed)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._last_logged is not None and now - self._last_logged < self.interval_s:
                self._suppressed += 1
                return None
            suppressed, self._suppressed, self._last_logged = self._suppressed, 0, now
            return suppressed
