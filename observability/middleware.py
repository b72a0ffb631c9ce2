"""The request log: the request id and the per-request JSON line (the access log), nothing else.

Metrics come from django-prometheus's middleware pair and the server span from OpenTelemetry's Django
instrumentation (observability.tracing); this sits just inside django-prometheus's first middleware, outside
OpenTelemetry's, so the request id exists before the span starts and the trace ids are known when the line is
written.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter, time

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from observability.logs import REQUEST_ID_HEADER, log_context_clear, request_fields_bind, request_id_from
from observability.queueing import REQUEST_START_META_KEY, queue_wait_observe
from observability.redaction import path_redacted

log = structlog.get_logger("chowist.request")
# django-prometheus's label for a request no route matched.
UNMATCHED_VIEW = "<unnamed view>"


def _meta_key(header: str) -> str:
    """Where WSGI puts a request header in request.META (X-Request-ID -> HTTP_X_REQUEST_ID)."""
    return "HTTP_" + header.upper().replace("-", "_")


REQUEST_ID_META_KEY = _meta_key(REQUEST_ID_HEADER)


def view_name(request: HttpRequest) -> str:
    """The URL name, as django-prometheus labels its series (`view`)."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None and match.view_name else UNMATCHED_VIEW


def user_id(request: HttpRequest) -> int | None:
    """The user's id, touching the session only when the request carried a session cookie."""
    user = getattr(request, "user", None)
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", None)
    if wrapped is empty and settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return None
    return user.pk if user.is_authenticated else None


def request_context_clear(**kwargs: object) -> None:
    log_context_clear()


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Only a proxy in front overwrites X-Request-Start; without one the header is whatever a client sent.
        self.queue_stamped = settings.BEHIND_PROXY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.queue_stamped:
            # First, before anything else of this request runs: the wait ends when Django starts it.
            queue_wait_observe(request.META.get(REQUEST_START_META_KEY), now_s=time())
        # META directly: request.headers would build a dict of every header on each request just for this one.
        request_id = request_id_from(request.META.get(REQUEST_ID_META_KEY))
        request.request_id = request_id  # type: ignore[attr-defined]
        log_context_clear()  # whatever an earlier request in this thread left behind
        request_fields_bind(request_id=request_id)  # tracing adds trace_id/span_id
        start = perf_counter()
        response = self.get_response(request)
        duration = perf_counter() - start
        response[REQUEST_ID_HEADER] = request_id
        log.info(
            "request",
            method=request.method[:16] if request.method else "",
            path=path_redacted(request),
            view=view_name(request),
            status=response.status_code,
            duration_ms=round(duration * 1000, 3),
            user_id=user_id(request),
        )
        # The context stays bound until request_finished (request_context_clear): Django logs the
        # response ("Not Found: ...") after this middleware returns, and that line should carry the ids too.
        return response
