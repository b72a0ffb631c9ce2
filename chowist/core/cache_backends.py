"""The cache backends CACHES names: the one place where faults, metrics and cache spans hook into a cache.

Each backend is three layers, in this order (outermost first), put together by inheritance:

1. `Degrading`: the app's tolerance. A connection failure (real, or the `cache_down` fault) turns a read into a
   miss and drops a write, logged as `cache_unavailable` at most every CACHE_ERROR_LOG_INTERVAL_S, so the app
   computes without the cache instead of answering 500 (/readyz still sees the cache fail and says so). When
   the current trace is recorded, reads get a `cache.get` / `cache.get_many` span here.
2. django-prometheus's backend (`Metered*` classes only, i.e. when OBSERVABILITY is on): `django_cache_get_total`,
   `…_hits_total`, `…_misses_total` (and `…_fail_total` for Redis), counted by the library.
3. `Unreachable`: under `cache_down` every operation raises where the cache server's client would, so the
   metrics layer above sees an outage exactly as it would see a real one.

Before this, faults and metrics each monkeypatched `CacheHandler.create_connection` and were right only by
INSTALLED_APPS order; settings now name these classes (chowist.dburl.cache_from_url).
"""

from __future__ import annotations

from typing import Any

import structlog
from django.core.cache.backends import filebased, locmem, memcached, redis
from django_prometheus.cache.backends import filebased as metered_filebased
from django_prometheus.cache.backends import locmem as metered_locmem
from django_prometheus.cache.backends import memcached as metered_memcached
from django_prometheus.cache.backends import redis as metered_redis
from opentelemetry import trace

from chowist.core import faults
from chowist.core.file_cache import ThrottledCull
from chowist.core.log_throttle import LogThrottle

log = structlog.get_logger("chowist.faults")

# A cache outage logs once per interval per backend instance, not once per call.
CACHE_ERROR_LOG_INTERVAL_S = 5.0
_tracer = trace.get_tracer("chowist.cache")


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


CONNECTION_ERRORS = _connection_errors()
# What a failed operation answers: reads miss, writes are dropped (set_many: every key failed).
_READS = ("get_many", "has_key")
_WRITES: dict[str, Any] = {
    "set": None,
    "add": False,
    "touch": False,
    "delete": False,
    "delete_many": None,
    "clear": None,
}


def _fault_raise(backend: Any) -> None:
    if faults.fault_get(faults.CACHE_DOWN) is not None:
        raise CacheUnavailable(f"cache {backend.alias_name!r} unreachable (fault {faults.CACHE_DOWN})")


class Unreachable:
    """Innermost layer: every operation fails while `cache_down` is on."""

    alias_name = "default"

    def get(self, *args: Any, **kwargs: Any) -> Any:
        _fault_raise(self)
        return super().get(*args, **kwargs)  # type: ignore[misc]


def _unreachable(operation: str) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        _fault_raise(self)
        return getattr(super(Unreachable, self), operation)(*args, **kwargs)

    call.__name__ = operation
    return call


for _operation in (*_READS, *_WRITES, "set_many", "incr", "decr"):
    setattr(Unreachable, _operation, _unreachable(_operation))


class Degrading:
    """Outermost layer: connection failures degrade (miss / drop), reads get spans on recorded traces."""

    alias_name = "default"

    def __init__(self, location: Any, params: dict[str, Any]) -> None:
        super().__init__(location, params)  # type: ignore[call-arg]
        # Not an option Django knows: cache_from_url puts the alias here so logs and spans can name the cache.
        self.alias_name = params.get("ALIAS", "default")
        self._log_throttle = LogThrottle(CACHE_ERROR_LOG_INTERVAL_S)

    def _unavailable(self, operation: str, exc: BaseException) -> None:
        suppressed = self._log_throttle.allow()
        if suppressed is not None:
            log.warning(
                "cache_unavailable",
                cache=self.alias_name,
                operation=operation,
                error=str(exc) or type(exc).__name__,
                suppressed=suppressed,
            )

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            if not trace.get_current_span().is_recording():
                return super().get(key, default, version=version)  # type: ignore[misc]
            with _tracer.start_as_current_span("cache.get", attributes={"cache.name": self.alias_name}) as span:
                missing = object()
                value = super().get(key, missing, version=version)  # type: ignore[misc]
                span.set_attribute("cache.hit", value is not missing)
                return default if value is missing else value
        except CONNECTION_ERRORS as exc:
            self._unavailable("get", exc)
            return default

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        try:
            if not trace.get_current_span().is_recording():
                return super().get_many(keys, version=version)  # type: ignore[misc]
            with _tracer.start_as_current_span("cache.get_many", attributes={"cache.name": self.alias_name}) as span:
                found = super().get_many(keys, version=version)  # type: ignore[misc]
                span.set_attribute("cache.hits", len(found))
                return found
        except CONNECTION_ERRORS as exc:
            self._unavailable("get_many", exc)
            return {}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().has_key(key, version=version)  # type: ignore[misc]
        except CONNECTION_ERRORS as exc:
            self._unavailable("has_key", exc)
            return False

    def set_many(self, data: dict[Any, Any], *args: Any, **kwargs: Any) -> list[Any]:
        try:
            return super().set_many(data, *args, **kwargs)  # type: ignore[misc]
        except CONNECTION_ERRORS as exc:
            self._unavailable("set_many", exc)
            return list(data)

    # incr/decr have no sensible "miss": BaseCache raises ValueError for a missing key, so do these.
    def incr(self, *args: Any, **kwargs: Any) -> int:
        try:
            return super().incr(*args, **kwargs)  # type: ignore[misc]
        except CONNECTION_ERRORS as exc:
            self._unavailable("incr", exc)
            raise ValueError(f"cache {self.alias_name!r} unavailable: {exc}") from exc

    def decr(self, *args: Any, **kwargs: Any) -> int:
        try:
            return super().decr(*args, **kwargs)  # type: ignore[misc]
        except CONNECTION_ERRORS as exc:
            self._unavailable("decr", exc)
            raise ValueError(f"cache {self.alias_name!r} unavailable: {exc}") from exc


def _dropped_write(operation: str, result: Any) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(super(Degrading, self), operation)(*args, **kwargs)
        except CONNECTION_ERRORS as exc:
            self._unavailable(operation, exc)
            return result

    call.__name__ = operation
    return call


for _operation, _result in _WRITES.items():
    setattr(Degrading, _operation, _dropped_write(_operation, _result))


# --- the backends CACHES can name --------------------------------------------------------------------------
# Unreachable must sit between django-prometheus's class and Django's, so each Django backend gets its own.
class _UnreachableFileBased(Unreachable, ThrottledCull, filebased.FileBasedCache):
    pass


class _UnreachableLocMem(Unreachable, locmem.LocMemCache):
    pass


class _UnreachableRedis(Unreachable, redis.RedisCache):
    pass


class _UnreachablePyMemcache(Unreachable, memcached.PyMemcacheCache):
    pass


class FileBasedCache(Degrading, _UnreachableFileBased):
    pass


class LocMemCache(Degrading, _UnreachableLocMem):
    pass


class RedisCache(Degrading, _UnreachableRedis):
    pass


class PyMemcacheCache(Degrading, _UnreachablePyMemcache):
    pass


class MeteredFileBasedCache(Degrading, metered_filebased.FileBasedCache, _UnreachableFileBased):
    pass


class MeteredLocMemCache(Degrading, metered_locmem.LocMemCache, _UnreachableLocMem):
    pass


class MeteredRedisCache(Degrading, metered_redis.NativeRedisCache, _UnreachableRedis):
    pass


class MeteredPyMemcacheCache(Degrading, metered_memcached.PyMemcacheCache, _UnreachablePyMemcache):
    pass
