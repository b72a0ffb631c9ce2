"""The file cache (chowist.core.cache_backends) culls like Django's, but lists its directory at most once per interval."""

from __future__ import annotations

from pathlib import Path

import pytest

from chowist.core import file_cache
from chowist.core.cache_backends import FileBasedCache


def _files(path: Path) -> int:
    return len(list(path.glob("*.djcache")))


def test_culls_past_max_entries_at_the_next_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = FileBasedCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 30, "CULL_FREQUENCY": 3}})
    listings: list[int] = []
    original = FileBasedCache._list_cache_files
    monkeypatch.setattr(FileBasedCache, "_list_cache_files", lambda self: listings.append(1) or original(self))
    for i in range(60):
        cache.set(f"k{i}", i)
    assert len(listings) == 1  # the first set checked; the next 59 within the interval did not list
    assert _files(tmp_path) == 60  # over the limit until the next check
    monkeypatch.setattr(file_cache, "CULL_CHECK_INTERVAL_S", 0.0)
    cache.set("one-more", 1)
    assert _files(tmp_path) < 60
    assert cache.get("one-more") == 1
