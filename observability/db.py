"""Database accounting and DB spans through Django's connection.execute_wrapper (every backend, every query).

One wrapper does both jobs: it counts queries and their time for the per-request histograms, and, when the
current trace is being recorded, wraps each query in a CLIENT span. Doing the spans here instead of with
the sqlite3/psycopg instrumentors keeps the cost per query at a fraction (see observability/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from django.db import connections
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability.tracing import tracer

# Parametrised SQL carries no values, but a huge IN (...) list would bloat every span.
STATEMENT_MAX_CHARS = 2000


class QueryRecorder:
    """Counts queries and their wall time; installed around one request or task."""

    __slots__ = ("count", "seconds", "traced")

    def __init__(self, *, traced: bool) -> None:
        self.count = 0
        self.seconds = 0.0
        self.traced = traced

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        start = perf_counter()
        try:
            if not self.traced:
                return execute(sql, params, many, context)
            return self._traced(execute, sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += perf_counter() - start

    @staticmethod
    def _traced(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        connection = context["connection"]
        operation = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "SQL"
        # Few attributes on purpose: each one costs validation on every query.
        attributes = {"db.system": connection.vendor, "db.statement": sql[:STATEMENT_MAX_CHARS]}
        if many:
            attributes["db.executemany"] = True
        # Not made current: nothing inside a query starts spans, and attaching a context costs on every query.
        span = tracer().start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)
        try:
            return execute(sql, params, many, context)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            span.end()


class QueriesRecorded:
    """The context manager `queries_recorded()` returns: a plain class, cheaper than a generator and an ExitStack."""

    __slots__ = ("_connections", "recorder")

    def __init__(self) -> None:
        self.recorder = QueryRecorder(traced=trace.get_current_span().is_recording())
        self._connections: list[Any] = []

    def __enter__(self) -> QueryRecorder:
        self._connections = [connections[alias] for alias in connections]
        for connection in self._connections:
            connection.execute_wrappers.append(self.recorder)
        return self.recorder

    def __exit__(self, *exc_info: object) -> None:
        for connection in self._connections:
            # remove(), not Django's pop(): a wrapper installed inside the block (fault injection) may sit after ours.
            connection.execute_wrappers.remove(self.recorder)


def queries_recorded() -> QueriesRecorded:
    """Record every query run on any configured database while the block runs (in this thread).

    Queries get spans only when the current span is being recorded (the trace was sampled).
    """
    return QueriesRecorded()
