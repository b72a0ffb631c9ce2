"""The middleware's sampling decision and the SDK's agree: the trace id it draws is the span's, sampled alike."""

from __future__ import annotations

import random

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from observability import tracing

RATIO = 0.5


def _provider() -> TracerProvider:
    return TracerProvider(sampler=ParentBased(tracing.EntrySpanRatio(RATIO)), id_generator=tracing.PresetIdGenerator())


def test_a_preset_trace_id_is_used_and_sampled_by_the_same_rule() -> None:
    tracer = _provider().get_tracer("test")
    bound = TraceIdRatioBased.get_bound_for_rate(RATIO)
    rng = random.Random(7)
    decisions = []
    for _ in range(200):
        trace_id = rng.getrandbits(128) or 1
        tracing._preset_trace_id.set(trace_id)
        span = tracer.start_span("GET x/", kind=SpanKind.SERVER)
        span.end()
        assert span.get_span_context().trace_id == trace_id
        sampled = (trace_id & TraceIdRatioBased.TRACE_ID_LIMIT) < bound
        assert span.is_recording() is False  # ended
        assert span.get_span_context().trace_flags.sampled is sampled
        decisions.append(sampled)
    assert 60 < sum(decisions) < 140
    # Consumed: the next root span gets a fresh id.
    tracing._preset_trace_id.set(12345)
    first = tracer.start_span("a", kind=SpanKind.SERVER)
    second = tracer.start_span("b", kind=SpanKind.SERVER)
    assert first.get_span_context().trace_id == 12345 != second.get_span_context().trace_id


def test_a_span_without_a_parent_starts_a_trace_only_for_a_request_or_a_task() -> None:
    tracer = TracerProvider(sampler=ParentBased(tracing.EntrySpanRatio(1.0))).get_tracer("test")
    assert tracer.start_span("SELECT", kind=SpanKind.CLIENT).is_recording() is False
    assert tracer.start_span("internal").is_recording() is False
    assert tracer.start_span("GET /", kind=SpanKind.SERVER).is_recording() is True
    assert tracer.start_span("task t", kind=SpanKind.CONSUMER).is_recording() is True
