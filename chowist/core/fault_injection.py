"""Where the fault flags (chowist/core/faults.py) act: the request path, every DB query, every cache call.

- FaultMiddleware (after Django's middleware, inside django-prometheus's pair, so the metrics count what it does):
  `http_5xx` answers a fraction of matching requests with 500/503, `http_latency` sleeps before the view;
  `db_latency` is installed per request as a connection.execute_wrapper inside the request's query recorder,
  so the added time shows up as database time.
- `db_latency_install()` adds the same wrapper to every new connection of a process that has no requests
  (the consumer).
- `cache_down` acts in the cache backends themselves (chowist/core/cache_backends.py, named in CACHES): every
  operation fails as an unreachable server would, and the app degrades (a failed read is a miss).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import structlog
from django.db import connections
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse

from chowist.core import faults

log = structlog.get_logger("chowist.faults")

_FAULT_TOLERANT = "_chowist_fault_tolerant"


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
