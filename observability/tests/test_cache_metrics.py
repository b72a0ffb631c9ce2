"""Cache reads through Django's normal API are counted by django-prometheus's cache backends (settings.CACHES),
and faults and metrics meet in one place: the backend classes of chowist/core/cache_backends.py."""

from __future__ import annotations

import uuid

from django.core.cache import cache, caches

from chowist.core import cache_backends
from observability.tests.helpers import sample

# django-prometheus's `backend` label, by the module of its backend class.
BACKEND_LABELS = {"filebased": "filebased", "locmem": "locmem", "redis": "native_redis", "memcached": "pymemcache"}


def _backend() -> str:
    library = next(k for k in type(caches["default"]).__mro__ if k.__module__.startswith("django_prometheus."))
    return BACKEND_LABELS[library.__module__.rsplit(".", 1)[-1]]


def _counts() -> tuple[float, float, float]:
    backend = _backend()
    return (
        sample("django_cache_get_total", backend=backend),
        sample("django_cache_get_hits_total", backend=backend),
        sample("django_cache_get_misses_total", backend=backend),
    )


def test_the_configured_backend_is_metered_and_fault_tolerant() -> None:
    assert isinstance(caches["default"], cache_backends.Degrading)
    assert isinstance(caches["default"], cache_backends.Unreachable)
    assert type(caches["default"]).__name__.startswith("Metered")


def test_get_counts_a_miss_then_a_hit_and_keeps_the_callers_default() -> None:
    key = f"obs-test:{uuid.uuid4().hex}"
    gets, hits, misses = _counts()
    assert cache.get(key, "fallback") == "fallback"
    cache.set(key, "value")
    assert cache.get(key, "fallback") == "value"
    assert _counts() == (gets + 2, hits + 1, misses + 1)


def test_get_or_set_is_counted_through_get() -> None:
    key = f"obs-test:{uuid.uuid4().hex}"
    gets, hits, misses = _counts()
    assert cache.get_or_set(key, lambda: 7) == 7  # a miss, add(), and Django's re-read (a hit)
    assert cache.get_or_set(key, lambda: 8) == 7  # a hit
    assert _counts() == (gets + 3, hits + 2, misses + 1)
