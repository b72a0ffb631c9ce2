"""Reads to the PostgreSQL read replica, writes to the primary, and a client's own writes read back from the primary.

Configured by `DATABASE_REPLICA_URL` (settings add the `replica` alias and this router). Rules:

- Writes, migrations and everything outside an HTTP request (the consumer, management commands) use the
  primary: a task that reads the row its request just wrote must never miss it on a lagging replica.
- A request reads from the replica unless it has already written, is inside a transaction on the primary, or
  its client wrote within `DB_READ_YOUR_WRITES_S` (a cookie the middleware sets after a write). The cookie is not
  signed on purpose: forging it only buys the client reads from the primary.
- A view whose writes its client never reads back (`@read_your_writes_exempt`: the interaction POST appends a
  row to the inbox, counted later by the consumer) does not set that cookie: otherwise every visitor who sends
  interactions while browsing would read everything from the primary and the replica would serve almost nothing.
  Reads inside such a request that decide its write (a duplicate check) ask the write's database
  (`router.db_for_write`), not the replica.
- A replica that cannot be reached is skipped for `DB_REPLICA_RETRY_S`: reads go to the primary, logged once per
  outage as `replica_unavailable` and counted in `chowist_db_replica_fallbacks_total`. A safe request whose
  replica query fails mid-way is answered again from the primary, so a dying replica costs latency, not a 5xx.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse

from observability.metrics import db_read_routes, db_replica_fallbacks

PRIMARY = "default"
REPLICA = "replica"
PIN_COOKIE = "chowist_primary"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

log = structlog.get_logger("chowist.db")


@dataclass
class _RequestRouting:
    pinned: bool = False  # read from the primary: the client wrote recently, or this request did
    wrote: bool = False
    # The view declared its writes are never read back by its client (read_your_writes_exempt): no pin cookie.
    exempt: bool = False
    used_replica: bool = False
    replica_failed: bool = False


_request: contextvars.ContextVar[_RequestRouting | None] = contextvars.ContextVar("db_routing", default=None)


@dataclass
class _ReplicaHealth:
    down_until: float = 0.0
    reported: bool = False


_health = _ReplicaHealth()


def replica_configured() -> bool:
    return REPLICA in connections.settings


def replica_mark_down(*, reason: str, error: BaseException | None = None) -> None:
    """Skip the replica for DB_REPLICA_RETRY_S; log the first failure of an outage, count every one."""
    _health.down_until = time.monotonic() + settings.DB_REPLICA_RETRY_S
    db_replica_fallbacks.labels(reason=reason).inc()
    if not _health.reported:
        _health.reported = True
        log.warning(
            "replica_unavailable",
            reason=reason,
            error=(str(error) or type(error).__name__) if error else "",
            retry_s=settings.DB_REPLICA_RETRY_S,
        )
    with contextlib.suppress(DatabaseError):  # already broken: closing is best effort
        connections[REPLICA].close()


def _replica_usable() -> bool:
    if time.monotonic() < _health.down_until:
        return False
    replica = connections[REPLICA]
    try:
        # Django's health check (once per request with CONN_HEALTH_CHECKS), then a connection if there is none.
        replica.close_if_health_check_failed()
        replica.ensure_connection()
    except DatabaseError as exc:
        replica_mark_down(reason="unreachable", error=exc)
        return False
    if _health.reported:
        _health.reported = False
        log.info("replica_available")
    return True


EXEMPT_ATTRIBUTE = "read_your_writes_exempt"
V = TypeVar("V", bound=Callable[..., HttpResponse])


def read_your_writes_exempt(view: V) -> V:
    """Mark a view whose writes its client never reads back: they do not pin the client to the primary.

    For fire-and-forget writes only (an inbox row counted later, a log of views): a page the client then
    loads may come from a replica that has not replayed the write yet. The attribute survives decorators
    built with functools.wraps, which copy the wrapped function's __dict__.
    """
    setattr(view, EXEMPT_ATTRIBUTE, True)
    return view


class PrimaryReplicaRouter:
    """Django database router: see the module docstring."""

    def db_for_read(self, model: type, **hints: object) -> str:
        state = _request.get()
        if state is None:
            return PRIMARY
        if state.pinned or state.wrote or connections[PRIMARY].in_atomic_block:
            db_read_routes.labels(database="primary", reason="own_writes").inc()
            return PRIMARY
        if not _replica_usable():
            db_read_routes.labels(database="primary", reason="replica_down").inc()
            return PRIMARY
        state.used_replica = True
        db_read_routes.labels(database="replica", reason="read").inc()
        return REPLICA

    def db_for_write(self, model: type, **hints: object) -> str:
        state = _request.get()
        if state is not None:
            state.wrote = True
        return PRIMARY

    def allow_relation(self, obj1: object, obj2: object, **hints: object) -> bool:
        return True  # one database, two copies of it

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: object) -> bool:
        return db == PRIMARY


class ReadYourWritesMiddleware:
    """Scopes the router to one request: pins a client that wrote recently, and retries a safe request once on
    the primary when its replica query failed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not replica_configured():
            return self.get_response(request)
        response, state = self._handle(request, pinned=self._recently_wrote(request))
        if state.replica_failed and request.method in SAFE_METHODS and not state.wrote:
            response, state = self._handle(request, pinned=True)
        if state.wrote and not state.exempt:
            response.set_cookie(
                PIN_COOKIE,
                "1",
                max_age=max(1, round(settings.DB_READ_YOUR_WRITES_S)),
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response

    def _handle(self, request: HttpRequest, *, pinned: bool) -> tuple[HttpResponse, _RequestRouting]:
        state = _RequestRouting(pinned=pinned)
        token = _request.set(state)
        try:
            request._db_routing = state  # type: ignore[attr-defined]
            return self.get_response(request), state
        finally:
            _request.reset(token)

    @staticmethod
    def _recently_wrote(request: HttpRequest) -> bool:
        return settings.DB_READ_YOUR_WRITES_S > 0 and PIN_COOKIE in request.COOKIES

    def process_view(self, request: HttpRequest, view_func: Callable[..., HttpResponse], *args: object) -> None:
        state: _RequestRouting | None = getattr(request, "_db_routing", None)
        if state is not None and getattr(view_func, EXEMPT_ATTRIBUTE, False):
            state.exempt = True

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        state: _RequestRouting | None = getattr(request, "_db_routing", None)
        if state is None or not state.used_replica or not isinstance(exception, DatabaseError):
            return
        # Only a replica that no longer answers makes the request worth answering again from the primary.
        try:
            usable = connections[REPLICA].is_usable()
        except DatabaseError:
            usable = False
        if not usable:
            state.replica_failed = True
            replica_mark_down(reason="query_failed", error=exception)
