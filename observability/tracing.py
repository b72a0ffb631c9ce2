"""OpenTelemetry: one tracer provider per process, started after gunicorn forks (never in the master), and the
libraries' instrumentations configured for this app.

- Server spans: opentelemetry-instrumentation-django (current HTTP semantic conventions, OTEL_SEMCONV_STABILITY_OPT_IN),
  through `SampledDjangoMiddleware`, which draws the trace id and takes the sampling decision itself so that an
  unsampled request builds no span at all (see below). Probes (OTEL_PYTHON_DJANGO_EXCLUDED_URLS) get none either.
- Client spans: the dbapi instrumentations for sqlite3 and psycopg (every query, also in huey tasks), redis-py.
- Exporter: OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, the JSON-lines span file otherwise.
- Sampling: parent-based trace-id ratio (OTEL_TRACES_SAMPLER_RATIO); a trace starts only at a request or a task
  (`EntrySpanRatio`), never at a query with no parent (huey polling its SQLite queue, start-up statements).

Why the middleware subclass: the library's middleware does its full work for every request (request attributes,
URL exclusion checks, a span, context activation, duration metrics) whether or not the trace is recorded, and on
this app that was most of what the instrumentation cost. The sampler's rule is deterministic on the trace id, so
the middleware draws the id from the SDK's own generator, applies the same rule, and only a request that will be
recorded runs the library's middleware (the id is handed to the SDK through `PresetIdGenerator`, so the span
gets exactly that id and the sampler takes the same decision). An unsampled request gets a W3C-valid trace id
and span id for its log lines and for the tasks it enqueues, and the instrumentations are suppressed for it
with OpenTelemetry's own switch (`suppress_instrumentation`), so its queries build no spans either.
"""

from __future__ import annotations

import contextvars
import os
import random
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from observability.logs import request_fields_add
from observability.redaction import path_redacted
from observability.span_file import JsonLinesSpanExporter

# Spans reach the file within a second: the experiment report reads it right after a run.
EXPORT_DELAY_MS = 1000
TRACER_NAME = "chowist"
TRACEPARENT_META_KEY = "HTTP_TRACEPARENT"
TRACESTATE_META_KEY = "HTTP_TRACESTATE"
_state: dict[str, Any] = {"provider": None, "bound": 0}

# A proxy until tracing_init sets the provider, then it resolves to (and caches) the real tracer.
_tracer = trace.get_tracer(TRACER_NAME)
# The trace id the next root span of this thread gets (0: none preset).
_preset_trace_id: contextvars.ContextVar[int] = contextvars.ContextVar("chowist_preset_trace_id", default=0)
# The context of an unsampled request: instrumentations off (OpenTelemetry's own switch), no span.
_SUPPRESSED = otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, otel_context.Context())
_TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT


def tracer() -> trace.Tracer:
    return _tracer


class EntrySpanRatio(Sampler):
    """The root sampler: the trace-id ratio for SERVER and CONSUMER spans, nothing for any other span without a parent."""

    _ENTRY_KINDS = frozenset({SpanKind.SERVER, SpanKind.CONSUMER})

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        if kind not in self._ENTRY_KINDS:
            return SamplingResult(Decision.DROP)
        return self._ratio.should_sample(parent_context, trace_id, name, kind, *args, **kwargs)

    def get_description(self) -> str:
        return f"EntrySpanRatio{{{self._ratio.get_description()}}}"


class PresetIdGenerator(RandomIdGenerator):
    """The SDK's random ids, except a trace id the request middleware already drew (and sampled on)."""

    def generate_trace_id(self) -> int:
        preset = _preset_trace_id.get()
        if preset:
            _preset_trace_id.set(0)
            return preset
        return super().generate_trace_id()


def _random_id(bits: int) -> int:
    # The same source as the SDK's RandomIdGenerator (never 0, the invalid id).
    return random.getrandbits(bits) or 1


class SampledDjangoMiddleware(_DjangoMiddleware):
    """opentelemetry-instrumentation-django's middleware, run only for requests whose trace is recorded."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if not settings.OTEL_TRUST_TRACEPARENT:
            # An untrusted client's trace context is dropped at the edge: its sampled flag must not force recording.
            meta.pop(TRACEPARENT_META_KEY, None)
            meta.pop(TRACESTATE_META_KEY, None)
        parent = None
        if TRACEPARENT_META_KEY in meta:
            parent = trace.get_current_span(propagate.extract(meta, getter=wsgi_getter)).get_span_context()
            if not parent.is_valid:
                parent = None
        if parent is not None:
            sampled = parent.trace_flags.sampled
            trace_id = parent.trace_id
        else:
            trace_id = _random_id(128)
            sampled = (trace_id & _TRACE_ID_LIMIT) < _state["bound"]
        if sampled and not self._excluded_urls.url_disabled(request.path):
            request.otel_sampled = True  # type: ignore[attr-defined]
            if parent is None:
                _preset_trace_id.set(trace_id)
            return super().__call__(request)
        # Not recorded: ids for the log lines and the task carrier only, and no instrumentation inside.
        request_fields_add(trace_id=f"{trace_id:032x}", span_id=f"{_random_id(64):016x}")
        token = otel_context.attach(_SUPPRESSED)
        try:
            return self.get_response(request)
        finally:
            otel_context.detach(token)

    def process_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        if getattr(request, "otel_sampled", False):
            super().process_view(request, *args, **kwargs)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if getattr(request, "otel_sampled", False):
            super().process_exception(request, exception)


class _Instrumentor(DjangoInstrumentor):
    # DjangoInstrumentor inserts this path into settings.MIDDLEWARE (its class attribute, same middleware).
    _opentelemetry_middleware = f"{SampledDjangoMiddleware.__module__}.{SampledDjangoMiddleware.__qualname__}"


# Span attributes that hold the request path (current and older HTTP semantic conventions).
_PATH_ATTRIBUTES = ("url.path", "http.target")


def _request_hook(span: trace.Span, request: HttpRequest) -> None:
    """The recorded request's ids go on its log lines (set by observability.middleware) and its span."""
    context = span.get_span_context()
    request_fields_add(trace_id=f"{context.trace_id:032x}", span_id=f"{context.span_id:016x}")
    request_id = getattr(request, "request_id", None)
    if request_id and span.is_recording():
        span.set_attribute("http.request_id", request_id)


def _response_hook(span: trace.Span, request: HttpRequest, response: HttpResponse) -> None:
    if not span.is_recording():
        return
    # The request attributes were taken from the raw path before the URL resolved: a token in it is redacted now.
    redacted = path_redacted(request)
    if redacted != request.path:
        for key in _PATH_ATTRIBUTES:
            if key in (getattr(span, "attributes", None) or {}):
                span.set_attribute(key, redacted)
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name:
        span.set_attribute("django.view", match.view_name)
        if not match.route:
            # The library names a span "<METHOD> <route>"; a route-less match (e.g. "" for the home page) by URL name.
            span.update_name(f"{request.method} {match.view_name}")


def _exporter(*, otlp_endpoint: str, spans_file: Path, spans_file_max_bytes: int) -> SpanExporter:
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
    return JsonLinesSpanExporter(spans_file, max_bytes=spans_file_max_bytes)


def tracing_init(
    *,
    service_name: str,
    sampler_ratio: float,
    otlp_endpoint: str,
    spans_file: Path,
    spans_file_max_bytes: int = 0,
    semconv_opt_in: str,
    excluded_urls: str,
    django: bool,
) -> None:
    """The provider, exporter and instrumentations; `django=True` in processes that serve requests."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(EntrySpanRatio(sampler_ratio)),
        id_generator=PresetIdGenerator(),
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            _exporter(otlp_endpoint=otlp_endpoint, spans_file=spans_file, spans_file_max_bytes=spans_file_max_bytes),
            schedule_delay_millis=EXPORT_DELAY_MS,
        )
    )
    trace.set_tracer_provider(provider)
    _state["provider"] = provider
    _state["bound"] = TraceIdRatioBased.get_bound_for_rate(sampler_ratio)
    # The instrumentations read it from the environment when they are set up.
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = semconv_opt_in

    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    SQLite3Instrumentor().instrument()
    PsycopgInstrumentor().instrument(skip_dep_check=True)
    RedisInstrumentor().instrument()
    if django:
        _Instrumentor().instrument(
            excluded_urls=excluded_urls,
            request_hook=_request_hook,
            response_hook=_response_hook,
            # Inside django-prometheus's first middleware and the request log (observability.middleware), so the
            # request id is there for the hooks and the trace ids are there for the log line.
            middleware_position=2,
        )


def tracing_flush() -> None:
    """Export what is buffered (a gunicorn worker exiting must not lose its last spans)."""
    provider = _state["provider"]
    if provider is not None:
        provider.force_flush()
