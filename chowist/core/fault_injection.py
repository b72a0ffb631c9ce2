"""Where the fault flags (chowist/core/faults.py) act: the request path, every DB query, every cache call.

- FaultMiddleware (last in MIDDLEWARE, so the observability middleware around it measures what it does):
  `http_5xx` answers a fraction of matching requests with 500/503, `http_latency` sleeps before the view;
  `db_latency` is installed per request as a connection.execute_wrapper inside the request's query recorder,
  so the added time shows up as database time.
- `db_latency_install()` adds the same wrapper to every new connection of a process that has no requests
  (the consumer).
- `caches_fault_tolerant()` wraps each cache backend Django creates: under `cache_down` every operation fails
  as an unreachable server would, and — like a real outage of Redis — a failed read is a miss and a failed
  write is dropped, logged as `cache_unavailable`, so the app degrades (computes without the cache) instead
  of answering 500. /readyz still sees the cache fail and says so.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import structlog
from django.core.cache import CacheHandler
from django.core.cache.backends.base import BaseCache
from django.db import connections
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse

from chowist.core import faults

log = structlog.get_logger("chowist.faults")

_FAULT_TOLERANT = "_chowist_fault_tolerant"
# A cache outage logs once per interval per process, not once per call.
CACHE_ERROR_LOG_INTERVAL_S = 5.0


# --- HTTP -----------------------------------------------------------------------------------------------
class FaultMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        db_fault = faults.fault_get(faults.DB_LATENCY)
        if db_fault is None:
            return self.get_response(request)
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(_db_latency_wrapper))
            return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        active = faults.faults_active()
        if not active:
            return None
        view = request.resolver_match.view_name if request.resolver_match else ""
        latency = active.get(faults.HTTP_LATENCY)
        if latency is not None and latency.applies_to(view):
            time.sleep((latency.value or 0) / 1000)
        errors = active.get(faults.HTTP_5XX)
        if errors is not None and errors.applies_to(view) and random.random() < (errors.value or 0):
            from chowist.core.views import error_response

            return error_response(request, errors.status, f"injected fault {faults.HTTP_5XX} ({errors.status})")
        return None


# --- database -------------------------------------------------------------------------------------------
def _db_latency_wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict) -> Any:
    fault = faults.fault_get(faults.DB_LATENCY)
    if fault is not None and fault.value:
        time.sleep(fault.value / 1000)
    return execute(sql, params, many, context)


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _db_latency_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _db_latency_wrapper)


def db_latency_install() -> None:
    """Apply db_latency to every connection this process opens from now on (processes without requests)."""
    connection_created.connect(_on_connection_created, dispatch_uid="chowist_db_latency")
    for alias in connections:
        connection = connections[alias]
        if connection.connection is not None:
            _on_connection_created(None, connection)


# --- cache ----------------------------------------------------------------------------------------------
class CacheUnavailable(ConnectionError):
    """What the `cache_down` fault raises where the cache server's client would."""


def _connection_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OSError,)  # ConnectionError, CacheUnavailable, socket errors
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += (RedisConnectionError, RedisTimeoutError)
    except ImportError:
        pass
    try:
        from pymemcache.exceptions import MemcacheError

        errors += (MemcacheError,)
    except ImportError:
        pass
    return errors


_READS_MISS: dict[str, Callable[[tuple, dict], Any]] = {
    "get": lambda args, kwargs: kwargs.get("default", args[1] if len(args) > 1 else None),
    "get_many": lambda args, kwargs: {},
    "has_key": lambda args, kwargs: False,
}
_WRITES_DROP: dict[str, Any] = {
    "set": None,
    "add": False,
    "touch": False,
    "delete": False,
    "set_many": None,  # set in the wrapper: every key failed
    "delete_many": None,
    "clear": None,
}


def backend_fault_tolerant(backend: BaseCache, *, alias: str) -> BaseCache:
    """Make `backend` fail under cache_down, and degrade (miss / drop) on any connection failure."""
    if getattr(backend, _FAULT_TOLERANT, False):
        return backend
    errors = _connection_errors()
    last_logged = [0.0]

    def unavailable(operation: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - last_logged[0] >= CACHE_ERROR_LOG_INTERVAL_S:
            last_logged[0] = now
            log.warning("cache_unavailable", cache=alias, operation=operation, error=str(exc) or type(exc).__name__)

    def wrap(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                if faults.fault_get(faults.CACHE_DOWN) is not None:
                    raise CacheUnavailable(f"cache {alias!r} unreachable (fault {faults.CACHE_DOWN})")
                return original(*args, **kwargs)
            except errors as exc:
                unavailable(operation, exc)
                if operation in _READS_MISS:
                    return _READS_MISS[operation](args, kwargs)
                if operation == "set_many":
                    data = args[0] if args else kwargs.get("data", {})
                    return list(data)
                return _WRITES_DROP[operation]

        return call

    for operation in (*_READS_MISS, *_WRITES_DROP):
        setattr(backend, operation, wrap(operation, getattr(backend, operation)))
    # incr/decr have no sensible "miss": BaseCache raises ValueError for a missing key, so does this.
    for operation in ("incr", "decr"):
        original = getattr(backend, operation)

        def counter(*args: Any, _original: Callable[..., Any] = original, _op: str = operation, **kwargs: Any) -> Any:
            try:
                if faults.fault_get(faults.CACHE_DOWN) is not None:
                    raise CacheUnavailable(f"cache {alias!r} unreachable (fault {faults.CACHE_DOWN})")
                return _original(*args, **kwargs)
            except errors as exc:
                unavailable(_op, exc)
                raise ValueError(f"cache {alias!r} unavailable: {exc}") from exc

        setattr(backend, operation, counter)
    setattr(backend, _FAULT_TOLERANT, True)
    return backend


def caches_fault_tolerant() -> None:
    """Wrap every cache backend Django creates from now on.

    Installed from CoreConfig.ready(), before the observability app instruments the same backends, so the
    hit/miss counters and cache spans sit outside this layer and count a degraded read as a miss.
    """
    if getattr(CacheHandler, _FAULT_TOLERANT, False):
        return
    original_create = CacheHandler.create_connection

    def create_connection(self: CacheHandler, alias: str) -> BaseCache:
        return backend_fault_tolerant(original_create(self, alias), alias=alias)

    CacheHandler.create_connection = create_connection  # type: ignore[method-assign]
    setattr(CacheHandler, _FAULT_TOLERANT, True)
