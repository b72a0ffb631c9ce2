"""The per-request series helpers give exactly what prometheus-client's public methods give."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from observability.metrics import LATENCY_BUCKETS, QUERY_COUNT_BUCKETS, HistogramChild, value_inc

# Every bucket edge, just either side of it, zero, and beyond the last finite bound.
AMOUNTS = sorted(
    {0.0, 1e-9, 20.0, 1e9}
    | {edge for edge in LATENCY_BUCKETS + QUERY_COUNT_BUCKETS}
    | {math.nextafter(edge, math.inf) for edge in LATENCY_BUCKETS + QUERY_COUNT_BUCKETS}
    | {math.nextafter(edge, -math.inf) for edge in LATENCY_BUCKETS if edge > 0}
)


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, str], float]:
    return {
        (sample.name.removeprefix(name), sample.labels.get("le", "")): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name.startswith(name) and not sample.name.endswith("_created")
    }


def test_histogram_child_puts_every_amount_in_the_bucket_the_library_would() -> None:
    for buckets in (LATENCY_BUCKETS, QUERY_COUNT_BUCKETS):
        registry = CollectorRegistry()
        public = Histogram("public_h", "h", ["view"], buckets=buckets, registry=registry).labels(view="v")
        fast = HistogramChild(Histogram("fast_h", "h", ["view"], buckets=buckets, registry=registry).labels(view="v"))
        for amount in AMOUNTS:
            public.observe(amount)
            fast.observe(amount)
        assert _samples(registry, "fast_h") == _samples(registry, "public_h")
        assert _samples(registry, "fast_h")[("_count", "")] == len(AMOUNTS)


def test_value_inc_moves_counters_and_gauges_like_the_library() -> None:
    registry = CollectorRegistry()
    counter = Counter("requests", "c", ["status"], registry=registry)
    inc = value_inc(counter.labels(status="200"))
    inc(1)
    inc(2)
    gauge = Gauge("in_progress", "g", registry=registry)
    move = value_inc(gauge)
    move(1)
    move(1)
    move(-1)
    assert registry.get_sample_value("requests_total", {"status": "200"}) == 3
    assert registry.get_sample_value("in_progress") == 1
