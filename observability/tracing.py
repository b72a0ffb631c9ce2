"""OpenTelemetry: one tracer provider per process, started after gunicorn forks (never in the master).

The exporter follows the environment: OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, the JSON-lines
span file otherwise. Sampling is parent-based with a trace-id ratio (OTEL_TRACES_SAMPLER_RATIO).
"""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from observability.span_file import JsonLinesSpanExporter

# Spans reach the file within a second: the experiment report reads it right after a run.
EXPORT_DELAY_MS = 1000
TRACER_NAME = "chowist"
_state: dict[str, TracerProvider | None] = {"provider": None}


# A proxy until tracing_init sets the provider, then it resolves to (and caches) the real tracer.
_tracer = trace.get_tracer(TRACER_NAME)


def tracer() -> trace.Tracer:
    return _tracer


def _exporter(*, otlp_endpoint: str, spans_file: Path) -> SpanExporter:
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
    return JsonLinesSpanExporter(spans_file)


def tracing_init(*, service_name: str, sampler_ratio: float, otlp_endpoint: str, spans_file: Path) -> None:
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sampler_ratio)),
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            _exporter(otlp_endpoint=otlp_endpoint, spans_file=spans_file), schedule_delay_millis=EXPORT_DELAY_MS
        )
    )
    trace.set_tracer_provider(provider)
    _state["provider"] = provider

    # Requests, queries and cache reads get their spans from observability.middleware, .db and .caches;
    # redis-py is instrumented as a library because huey and the cache talk to Redis outside Django's ORM.
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument()


def tracing_flush() -> None:
    """Export what is buffered (a gunicorn worker exiting must not lose its last spans)."""
    provider = _state["provider"]
    if provider is not None:
        provider.force_flush()
