"""The app's Prometheus metrics: names, labels and buckets exactly as observability/METRICS.md lists them.

Metric objects are created when this module is first imported. Under gunicorn that happens in each worker
after the fork, with PROMETHEUS_MULTIPROC_DIR already exported by gunicorn.conf.py, so every value lives in
a per-process mmap file that the master aggregates (see exposition.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Edges at 0.1, 0.25 and 0.3 s so the latency SLO thresholds fall exactly on a bucket boundary.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
QUERY_COUNT_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 100)
UNMATCHED_VIEW = "unmatched"

http_requests = Counter(
    "chowist_http_requests",
    "HTTP requests answered, by URL name, method and status.",
    ["view", "method", "status"],
)
http_request_duration = Histogram(
    "chowist_http_request_duration_seconds",
    "Time from the request entering Django's middleware to the response leaving it.",
    ["view", "method"],
    buckets=LATENCY_BUCKETS,
)
http_requests_in_progress = Gauge(
    "chowist_http_requests_in_progress",
    "Requests being handled right now, summed over live workers.",
    multiprocess_mode="livesum",
)
db_queries_per_request = Histogram(
    "chowist_db_queries_per_request",
    "Database queries executed while handling one request.",
    ["view"],
    buckets=QUERY_COUNT_BUCKETS,
)
db_time_per_request = Histogram(
    "chowist_db_time_per_request_seconds",
    "Wall time spent in database queries while handling one request.",
    ["view"],
    buckets=LATENCY_BUCKETS,
)
cache_requests = Counter(
    "chowist_cache_requests",
    "Cache reads by cache alias (or named use) and result.",
    ["cache", "result"],
)
interactions_accepted = Counter(
    "chowist_interactions_accepted",
    "Interactions whose inbox INSERT committed.",
    ["kind", "mode"],
)
reviews_created = Counter("chowist_reviews_created", "Reviews created.")
signups = Counter("chowist_signups", "User accounts created.")
# live*: a dead worker's value disappears with it, so a deploy never leaves the old git_sha behind.
build_info = Gauge(
    "chowist_build_info",
    "Always 1; the labels say which build is serving.",
    ["version", "git_sha"],
    multiprocess_mode="livemax",
)
fault_active = Gauge(
    "chowist_fault_active",
    "1 while the named fault flag is on.",
    ["fault"],
    multiprocess_mode="livemax",
)


def fault_active_set(*, fault: str, active: bool) -> None:
    """Record whether a fault flag is on (called by whoever reads the faults file)."""
    fault_active.labels(fault=fault).set(1 if active else 0)


def build_info_set(*, version: str, git_sha: str) -> None:
    build_info.labels(version=version, git_sha=git_sha or "unknown").set(1)
