"""Cache reads through Django's normal API are counted as hits and misses per cache."""

from __future__ import annotations

import uuid

from django.core.cache import cache, caches

from observability.caches import cache_use
from observability.tests.helpers import sample


def _counts(name: str) -> tuple[float, float]:
    return (
        sample("chowist_cache_requests_total", cache=name, result="hit"),
        sample("chowist_cache_requests_total", cache=name, result="miss"),
    )


def test_get_counts_a_miss_then_a_hit_and_keeps_the_callers_default() -> None:
    key = f"obs-test:{uuid.uuid4().hex}"
    hits, misses = _counts("default")
    assert cache.get(key, "fallback") == "fallback"
    cache.set(key, None)  # a stored None is a hit, not a miss
    assert caches["default"].get(key, "fallback") is None
    assert _counts("default") == (hits + 1, misses + 1)


def test_get_or_set_and_get_many_are_counted() -> None:
    first, second = f"obs-test:{uuid.uuid4().hex}", f"obs-test:{uuid.uuid4().hex}"
    hits, misses = _counts("default")
    assert cache.get_or_set(first, lambda: 7) == 7  # miss, then stored
    assert cache.get_or_set(first, lambda: 8) == 7  # hit
    assert cache.get_many([first, second]) == {first: 7}  # one hit, one miss
    assert _counts("default") == (hits + 2, misses + 2)


def test_a_named_use_is_counted_under_its_own_label() -> None:
    hits, misses = _counts("popular")
    with cache_use("popular"):
        cache.get(f"obs-test:{uuid.uuid4().hex}")
    assert _counts("popular") == (hits, misses + 1)
