"""The consumer's Prometheus metrics: names, labels and buckets exactly as observability/METRICS.md lists them.

They live in their own registry, served by the consumer on CONSUMER_METRICS_PORT, so the worker's scrape never
carries the app's (empty) families. The consumer runs thread workers only (settings.HUEY_WORKER_TYPE), so every
worker thread updates the same in-process values and one scrape sees them all.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, gc_collector, platform_collector, process_collector

from observability.metrics import telemetry_setup_failures

# 5 ms .. 60 s so p50/p95/p99 stay readable from an idle Redis queue to a minute of backlog; 5 s is an edge
# because it is the freshness SLO threshold.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

OUTCOME_SUCCESS = "success"
OUTCOME_ERROR = "error"
OUTCOME_RETRY = "retry"

REGISTRY = CollectorRegistry()
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)
# A signal that failed to start in the consumer (observability.setup.signal_start) shows on the consumer's own scrape.
REGISTRY.register(telemetry_setup_failures)

job_lag = Histogram(
    "chowist_job_lag_seconds",
    "Time from a task being enqueued (or becoming due) to a worker starting it.",
    ["task"],
    buckets=LAG_BUCKETS,
    registry=REGISTRY,
)
job_duration = Histogram(
    "chowist_job_duration_seconds",
    "Time a task ran, whatever its outcome.",
    ["task"],
    buckets=LAG_BUCKETS,
    registry=REGISTRY,
)
jobs = Counter(
    "chowist_jobs",
    "Task executions by outcome: success, error (no retries left) or retry (will run again).",
    ["task", "outcome"],
    registry=REGISTRY,
)
interactions_recorded = Counter(
    "chowist_interactions_recorded",
    "Interactions added to the per-place daily counters.",
    ["kind"],
    registry=REGISTRY,
)
interactions_quarantined = Counter(
    "chowist_interactions_quarantined",
    "Inbox rows the drain could not count (unknown kind): stamped and set aside instead of blocking the drain.",
    ["kind"],
    registry=REGISTRY,
)
