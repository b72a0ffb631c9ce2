"""Cache hit/miss counters and spans for every Django cache, without touching call sites.

Each backend instance Django creates gets its reads wrapped: `get`, `get_or_set` and `get_many`, each
counted once per key however the backend implements it. The label is the cache alias, or a named use set with `cache_use("popular")`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.cache import CacheHandler
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from opentelemetry import trace

from observability import metrics
from observability.tracing import tracer

_use: ContextVar[str | None] = ContextVar("chowist_cache_use", default=None)
# Set while get_many / get_or_set run, so the get() calls Django makes inside them are not counted twice.
_inner_hits: ContextVar[list[bool] | None] = ContextVar("chowist_cache_inner_hits", default=None)
_MISSING = object()
_INSTRUMENTED = "_chowist_instrumented"


@contextmanager
def cache_use(name: str) -> Iterator[None]:
    """Count the cache reads inside the block under `name` (e.g. `popular`) instead of the alias."""
    token = _use.set(name)
    try:
        yield
    finally:
        _use.reset(token)


def cache_result_record(*, cache: str, hits: int, misses: int) -> None:
    if hits:
        metrics.cache_inc(cache=cache, hit=True)(hits)
    if misses:
        metrics.cache_inc(cache=cache, hit=False)(misses)


def backend_instrument(backend: BaseCache, *, alias: str) -> BaseCache:
    if getattr(backend, _INSTRUMENTED, False):
        return backend
    original_get = backend.get
    original_get_many = backend.get_many
    original_get_or_set = backend.get_or_set

    # Each wrapper has a plain path for the usual, unsampled request (no span, no context manager) and a
    # traced one, taken only when the current span is being recorded.
    def get(key: Any, default: Any = None, version: int | None = None) -> Any:
        inner = _inner_hits.get()
        if inner is not None:  # part of a get_or_set / get_many already being counted
            value = original_get(key, _MISSING, version=version)
            inner.append(value is not _MISSING)
            return default if value is _MISSING else value
        label = _use.get() or alias
        if trace.get_current_span().is_recording():
            with tracer().start_as_current_span("cache.get", attributes={"cache.name": label}) as span:
                value = original_get(key, _MISSING, version=version)
                span.set_attribute("cache.hit", value is not _MISSING)
        else:
            value = original_get(key, _MISSING, version=version)
        hit = value is not _MISSING
        metrics.cache_inc(cache=label, hit=hit)(1)
        return value if hit else default

    def get_many(keys: Any, version: int | None = None) -> dict[Any, Any]:
        keys = list(keys)
        label = _use.get() or alias
        token = _inner_hits.set([])
        try:
            if trace.get_current_span().is_recording():
                with tracer().start_as_current_span("cache.get_many", attributes={"cache.name": label}) as span:
                    found = original_get_many(keys, version=version)
                    span.set_attribute("cache.hits", len(found))
            else:
                found = original_get_many(keys, version=version)
        finally:
            _inner_hits.reset(token)
        cache_result_record(cache=label, hits=len(found), misses=len(keys) - len(found))
        return found

    def get_or_set(key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> Any:
        label = _use.get() or alias
        inner: list[bool] = []
        token = _inner_hits.set(inner)
        try:
            if trace.get_current_span().is_recording():
                with tracer().start_as_current_span("cache.get_or_set", attributes={"cache.name": label}) as span:
                    value = original_get_or_set(key, default, timeout=timeout, version=version)
                    # The first read decides: a miss is followed by add() and a re-read that finds the new value.
                    span.set_attribute("cache.hit", inner[0] if inner else True)
            else:
                value = original_get_or_set(key, default, timeout=timeout, version=version)
        finally:
            _inner_hits.reset(token)
        hit = inner[0] if inner else True
        metrics.cache_inc(cache=label, hit=hit)(1)
        return value

    backend.get = get  # type: ignore[method-assign]
    backend.get_many = get_many  # type: ignore[method-assign]
    backend.get_or_set = get_or_set  # type: ignore[method-assign]
    setattr(backend, _INSTRUMENTED, True)
    return backend


def caches_instrument() -> None:
    """Wrap every cache backend Django creates from now on (caches are created lazily, per thread)."""
    if getattr(CacheHandler, _INSTRUMENTED, False):
        return
    original_create = CacheHandler.create_connection

    def create_connection(self: CacheHandler, alias: str) -> BaseCache:
        return backend_instrument(original_create(self, alias), alias=alias)

    CacheHandler.create_connection = create_connection  # type: ignore[method-assign]
    setattr(CacheHandler, _INSTRUMENTED, True)
