"""The JSON-lines span file: the exact record format METRICS.md promises the experiment report."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from observability.span_file import JsonLinesSpanExporter

KEYS = {
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "service",
    "start_unix_nano",
    "end_unix_nano",
    "duration_ms",
    "status",
    "attributes",
}


def test_spans_are_appended_one_json_object_a_line(tmp_path) -> None:
    path = tmp_path / "nested" / "spans.jsonl"
    provider = TracerProvider(resource=Resource.create({"service.name": "chowist-app"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET places:detail", attributes={"http.route": "places/<int:pk>/"}):
        with tracer.start_as_current_span("SELECT", attributes={"db.statement": "SELECT 1"}):
            pass
        with pytest.raises(KeyError), tracer.start_as_current_span("cache.get"):
            raise KeyError("x")
    provider.shutdown()

    select, cache_get, request = (json.loads(line) for line in path.read_text().splitlines())
    for record in (select, cache_get, request):
        assert set(record) == KEYS
        assert len(record["trace_id"]) == 32 and len(record["span_id"]) == 16
        assert record["service"] == "chowist-app"
        assert record["end_unix_nano"] >= record["start_unix_nano"]
        assert record["duration_ms"] == pytest.approx((record["end_unix_nano"] - record["start_unix_nano"]) / 1e6)
    assert request["parent_span_id"] is None
    assert select["parent_span_id"] == cache_get["parent_span_id"] == request["span_id"]
    assert select["trace_id"] == request["trace_id"]
    assert request["kind"] == "INTERNAL"
    assert cache_get["status"] == "ERROR"
    assert select["status"] == "UNSET"
    assert select["attributes"] == {"db.statement": "SELECT 1"}


def test_the_span_file_is_rotated_past_its_cap_and_never_grows_without_bound(tmp_path) -> None:
    # Before: var/spans.jsonl only ever grew.
    from observability.span_file import rotated_path

    path = tmp_path / "spans.jsonl"
    cap = 20_000
    provider = TracerProvider(resource=Resource.create({"service.name": "chowist-app"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path, max_bytes=cap)))
    tracer = provider.get_tracer("test")
    for i in range(500):
        with tracer.start_as_current_span(f"span {i}", attributes={"n": i}):
            pass
    provider.shutdown()
    assert path.stat().st_size <= cap and rotated_path(path).stat().st_size <= cap
    lines = [json.loads(line) for line in (rotated_path(path).read_text() + path.read_text()).splitlines()]
    # The newest spans are all there, in order, and every line is whole JSON.
    assert lines[-1]["name"] == "span 499"
    assert [line["attributes"]["n"] for line in lines] == list(range(lines[0]["attributes"]["n"], 500))
