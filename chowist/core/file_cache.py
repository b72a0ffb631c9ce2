"""Django's file-based cache, with the size check off the hot path (a mixin of chowist.core.cache_backends).

FileBasedCache lists its whole directory on every `set` to decide whether to cull. With the page cache
storing thousands of pages, that listing (thousands of names through glob) costs more than the write it
guards. Here a backend instance lists the directory at most once per CULL_CHECK_INTERVAL_S; between checks the
cache may run past MAX_ENTRIES by what is written in that interval, and the next check culls as usual.
"""

from __future__ import annotations

import time

CULL_CHECK_INTERVAL_S = 5.0


class ThrottledCull:
    """Goes before Django's FileBasedCache in the bases. Two threads racing past the check both list: harmless."""

    _cull_checked_at = float("-inf")

    def _cull(self) -> None:
        now = time.monotonic()
        if now - self._cull_checked_at < CULL_CHECK_INTERVAL_S:
            return
        self._cull_checked_at = now
        super()._cull()  # type: ignore[misc]
