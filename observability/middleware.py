"""The request middleware: the server span, metrics, the per-request log event and the request id, in one pass.

Listed first in MIDDLEWARE (only when OBSERVABILITY is on) so it times and counts everything, redirects
and errors included. It makes the request's SERVER span itself (joining an incoming W3C `traceparent`)
rather than through opentelemetry-instrumentation-django: same span, a fraction of the cost per request.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from time import perf_counter, time_ns
from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from observability import metrics
from observability.db import queries_recorded
from observability.logs import REQUEST_ID_HEADER, log_context_clear, request_fields_bind, request_id_from
from observability.tracing import tracer

log = structlog.get_logger("chowist.request")
# Any other method string a client sends is folded into one label value, so it cannot mint new series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_propagator = TraceContextTextMapPropagator()


def _meta_key(header: str) -> str:
    """Where WSGI puts a request header in request.META (X-Request-ID -> HTTP_X_REQUEST_ID)."""
    return "HTTP_" + header.upper().replace("-", "_")


REQUEST_ID_META_KEY = _meta_key(REQUEST_ID_HEADER)
TRACEPARENT_META_KEY = _meta_key("traceparent")
# An explicit empty context: a new trace, never a child of whatever this thread had attached before.
_NO_PARENT = otel_context.Context()
in_progress_inc = metrics.in_progress_inc


class _MetaGetter:
    """Reads W3C headers straight from request.META (HTTP_TRACEPARENT, …)."""

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        value = carrier.get(_meta_key(key))
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return []


_meta_getter = _MetaGetter()


def view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None and match.view_name else metrics.UNMATCHED_VIEW


def user_id(request: HttpRequest) -> int | None:
    """The user's id, touching the session only when the request carried a session cookie."""
    user = getattr(request, "user", None)
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", None)
    if wrapped is empty and settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return None
    return user.pk if user.is_authenticated else None


def request_exception_record(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """got_request_exception: put the exception on the request span (Django turns it into a 500 after this)."""
    exc = sys.exc_info()[1]
    span = trace.get_current_span()
    if exc is not None and span.is_recording():
        span.record_exception(exc)


def request_context_clear(**kwargs: object) -> None:
    log_context_clear()


class RequestObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        # META directly: request.headers would build a dict of every header on each request just for this one.
        request_id = request_id_from(meta.get(REQUEST_ID_META_KEY))
        request.request_id = request_id  # type: ignore[attr-defined]
        method = request.method if request.method in KNOWN_METHODS else "other"
        # Most requests carry no traceparent: they start a new trace without running the propagator.
        parent = _propagator.extract(meta, getter=_meta_getter) if TRACEPARENT_META_KEY in meta else _NO_PARENT
        span = tracer().start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            start_time=time_ns(),
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        log_context_clear()  # whatever an earlier request in this thread left behind
        span_context = span.get_span_context()
        if span_context.is_valid:
            request_fields_bind(
                request_id=request_id,
                trace_id=format(span_context.trace_id, "032x"),
                span_id=format(span_context.span_id, "016x"),
            )
        else:  # no tracer provider in this process (tracing not set up)
            request_fields_bind(request_id=request_id)

        start = perf_counter()
        in_progress_inc(1)
        try:
            with queries_recorded() as queries:
                response = self.get_response(request)
        finally:
            in_progress_inc(-1)
            otel_context.detach(token)
        duration = perf_counter() - start

        view = view_name(request)
        status = response.status_code
        series = metrics.request_series(view=view, method=method, status=status)
        series.requests_inc(1)
        series.duration.observe(duration)
        series.queries.observe(queries.count)
        series.db_time.observe(queries.seconds)
        response[REQUEST_ID_HEADER] = request_id
        if span.is_recording():
            match = getattr(request, "resolver_match", None)
            route = match.route if match is not None else ""
            span.update_name(f"{method} {route}" if route else f"{method} {view}")
            # Set once the request is answered, and only on recorded spans: an unsampled request builds none of it.
            span.set_attributes(
                {
                    "http.method": method,
                    "http.target": request.path,
                    "http.request_id": request_id,
                    "http.route": route,
                    "http.status_code": status,
                    "chowist.view": view,
                    "db.queries": queries.count,
                }
            )
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        log.info(
            "request",
            method=request.method[:16] if request.method else "",
            path=request.path,
            view=view,
            status=status,
            duration_ms=round(duration * 1000, 3),
            db_queries=queries.count,
            user_id=user_id(request),
        )
        # The context stays bound until request_finished (request_context_clear): Django logs the
        # response ("Not Found: ...") after this middleware returns, and that line should carry the ids too.
        return response
