"""Whole-response caching of anonymous GETs, invalidated by generations instead of by the clock.

A cached view (`@page_cached("place", ...)`) answers a request without a session or messages cookie from
one `get_many` on the default cache: the stored entry and the generation tokens it depends on. The entry
holds the tokens it was rendered under; it is served only while every one of them is still current, so
bumping a generation (a fresh random token, written when a transaction that changed places or reviews
commits) retires every page built on the old one at once, on every worker, with no key listing. A missing
token (evicted, or a cold cache) is replaced by a fresh one, which no stored entry carries: eviction can
cost a miss, never serve a stale page.

Generations:
- `site`: everything; bumped by bulk loads that send no signals (seed_demo).
- `places`: every list and search page; bumped by any place, category link or review change.
- `place:<id>`: that place's detail page and API detail.
- `popular`: the popular-items answers; bumped whenever the popular lists are stored or forgotten.

With a read replica (chowist/core/db_routing.py), a page rendered from the replica is not stored while a
token is younger than DB_READ_YOUR_WRITES_S, the lag the replica is allowed: it may predate the write.

PAGE_CACHE=off turns it off (every request renders: the uncached path, for the page-cache experiment);
PAGE_CACHE_TTL bounds how long an entry lives even when nothing bumps it (e.g. an author renaming).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils.cache import patch_vary_headers
from opentelemetry import trace

from chowist.core import faults

SITE = "site"
PLACES = "places"
# "page2": entries hold the response headers (before, only the content type).
_KEY_PREFIX = "page2:"
_GEN_PREFIX = "pagegen:"
_MESSAGES_COOKIE = "messages"


POPULAR = "popular"


def place_generation(pk: int) -> str:
    return f"place:{pk}"


def _fresh_token() -> str:
    # When it was minted, then randomness: _storable needs the age, and no two tokens are ever equal.
    return f"{time.time():.3f}/{uuid.uuid4().hex[:16]}"


def _age_s(token: str) -> float:
    try:
        return time.time() - float(token.partition("/")[0])
    except ValueError:
        return 0.0


def page_cache_invalidate(*generations: str) -> None:
    """Retire every cached page built on these generations (call it once the change is committed)."""
    cache = caches["default"]
    cache.set_many({_GEN_PREFIX + g: _fresh_token() for g in generations}, timeout=None)


def _anonymous(request: HttpRequest) -> bool:
    # The cookies, not request.user: loading the session is the work a cache hit exists to skip. A visitor
    # with a session (logged in, or mid-form) or a pending flash message gets their own render.
    cookies = request.COOKIES
    return settings.SESSION_COOKIE_NAME not in cookies and _MESSAGES_COOKIE not in cookies


@dataclass(frozen=True)
class PageCacheSpec:
    """What `@page_cached` declares on a view: the generations its pages depend on, and its own switches."""

    generations: tuple[str | Callable[..., str], ...]
    enabled: Callable[[], bool] | None
    ttl: Callable[[], int] | None

    def on(self) -> bool:
        return self.enabled() if self.enabled is not None else settings.PAGE_CACHE

    def timeout(self) -> int:
        return self.ttl() if self.ttl is not None else settings.PAGE_CACHE_TTL

    def names(self, kwargs: dict[str, Any]) -> list[str]:
        return [SITE, *(g(**kwargs) if callable(g) else g for g in self.generations)]


def page_cached(
    *generations: str | Callable[..., str],
    enabled: Callable[[], bool] | None = None,
    ttl: Callable[[], int] | None = None,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Declare the view's 200 responses to anonymous GET/HEAD requests cacheable, keyed by the full path.

    `generations` are names, or callables of the view's kwargs (`lambda pk: place_generation(pk)`); the site
    generation is always included. `enabled` and `ttl` override PAGE_CACHE / PAGE_CACHE_TTL for one view.
    PageCacheMiddleware does the serving and storing; the declaration travels with the view through
    functools.wraps (decorators applied above this one keep it).
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        view.page_cache = PageCacheSpec(generations, enabled, ttl)  # type: ignore[attr-defined]
        return view

    return decorator


class PageCacheMiddleware:
    """Answers a cached page before the rest of the middleware runs; stores a page after all of it has run.

    It sits inside the observability middleware (metrics, the request log, the server span: a hit is a request
    like any other there) and in front of everything else: a hit skips sessions, CSRF, authentication,
    messages, the security headers' middleware and the view, and replays the stored status, headers and body,
    which are what all of those produced for the stored render. Its URL resolution is kept on the request, so
    the metrics and the log name the view as for a render. With a fault switched on (chowist/core/faults.py)
    every request takes the full path, where the fault acts.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD") or not _anonymous(request):
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        spec: PageCacheSpec | None = getattr(match.func, "page_cache", None)
        if spec is None or not spec.on() or faults.faults_active():
            return self.get_response(request)
        cache = caches["default"]
        gen_keys = [_GEN_PREFIX + n for n in spec.names(match.kwargs)]
        key = _KEY_PREFIX + hashlib.md5(request.get_full_path().encode(), usedforsecurity=False).hexdigest()
        found = cache.get_many([key, *gen_keys])
        tokens = [found.get(k) for k in gen_keys]
        entry = found.get(key)
        if entry is not None and entry[0] == tokens:
            request.resolver_match = match
            _route_on_span(match)
            _tokens, content, headers = entry
            response = HttpResponse(content)
            for name, value in headers:
                response.headers[name] = value
            return response
        missing = {k: _fresh_token() for k, t in zip(gen_keys, tokens, strict=True) if t is None}
        response = self.get_response(request)
        # The same URL answers a visitor with a session differently: shared caches must not mix the two.
        patch_vary_headers(response, ("Cookie",))
        if missing:
            # Another worker may be adding the same token: only a page stamped with the winner's could be served,
            # so this render is not stored; the next request finds the tokens in place.
            for gen_key, token in missing.items():
                cache.add(gen_key, token, timeout=None)
            return response
        if _storable(request, response, tokens):
            cache.set(key, (tokens, response.content, list(response.items())), spec.timeout())
        return response


def _route_on_span(match: ResolverMatch) -> None:
    # OpenTelemetry's middleware names the route in process_view, which a hit never reaches.
    span = trace.get_current_span()
    if span.is_recording() and match.route:
        span.set_attribute("http.route", match.route)


def page_cache_skip(response: HttpResponse) -> HttpResponse:
    """Mark a response as not to be stored (e.g. it says `"cached": false`, true only of this one answer)."""
    response.page_cache_skip = True  # type: ignore[attr-defined]
    return response


def _storable(request: HttpRequest, response: HttpResponse, tokens: list[str]) -> bool:
    routing = getattr(request, "_db_routing", None)
    if routing is not None and routing.used_replica and min(map(_age_s, tokens)) < settings.DB_READ_YOUR_WRITES_S:
        # Rendered from the read replica soon after a write: the replica may not have that write yet, and this
        # page would be served under the new tokens. Within the lag window only a primary render is stored.
        return False
    return (
        request.method == "GET"
        and response.status_code == 200
        and not response.streaming
        and not response.cookies
        and not response.has_header("Set-Cookie")
        and not getattr(response, "page_cache_skip", False)
        # A page that used a CSRF token is tied to this visitor's cookie: another visitor's form would fail.
        and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
    )
