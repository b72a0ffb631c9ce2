"""Readiness checks: what /readyz probes before the load balancer sends traffic.

`CHECKS` names each dependency and its check; a check returns None when healthy and raises otherwise.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from workers.queue import queue_check

Check = Callable[[], None]
log = structlog.get_logger(__name__)


def database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def cache_check() -> None:
    # A unique key per probe: a stale value left by another process must not pass for a working cache.
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    try:
        if cache.get(key) != "1":
            raise RuntimeError("value written to the cache could not be read back")
    finally:
        cache.delete(key)


CHECKS: list[tuple[str, Check]] = [
    ("database", database_check),
    ("cache", cache_check),
    ("queue", queue_check),
]


def readiness_report() -> tuple[bool, dict[str, str]]:
    """Run every check; (all passed, {name: "ok" or the error})."""
    results: dict[str, str] = {}
    for name, check in CHECKS:
        try:
            check()
        except Exception as exc:
            results[name] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            results[name] = "ok"
    return all(value == "ok" for value in results.values()), results


_cached: tuple[float, bool, dict[str, str]] | None = None
_cache_lock = threading.Lock()


def readiness_report_cached() -> tuple[bool, dict[str, str]]:
    """readiness_report(), run at most once per READINESS_CACHE_S in this process (probes can come often).

    Failures are logged (with their text) when they are found, not on every probe that reuses them.
    """
    global _cached
    with _cache_lock:
        now = time.monotonic()
        if _cached is not None and now - _cached[0] < settings.READINESS_CACHE_S:
            return _cached[1], _cached[2]
        ready, results = readiness_report()
        for name, result in results.items():
            if result != "ok":
                log.warning("readiness_check_failed", check=name, error=result)
        _cached = (now, ready, results)
        return ready, results


def readiness_cache_clear() -> None:
    global _cached
    with _cache_lock:
        _cached = None
