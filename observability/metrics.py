"""The app's Prometheus metrics: names, labels and buckets exactly as observability/METRICS.md lists them.

Metric objects are created when this module is first imported. Under gunicorn that happens in each worker
after the fork, with PROMETHEUS_MULTIPROC_DIR already exported by gunicorn.conf.py, so every value lives in
a per-process mmap file that the master aggregates (see exposition.py).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any, NamedTuple

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
db_read_routes = Counter(
    "chowist_db_read_routes",
    "Read routing decisions when a read replica is configured, by database and reason.",
    ["database", "reason"],
)
db_replica_fallbacks = Counter(
    "chowist_db_replica_fallbacks",
    "Times the read replica was found unusable and reads went to the primary, by reason.",
    ["reason"],
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


# prometheus-client's public `Counter.inc` / `Histogram.observe` re-check the labels (and a counter's sign) on
# every call, and `observe` walks the buckets in Python; a request updates about ten series, so those checks
# were a third of what its metrics cost. The series below are resolved once per process and then moved
# through the library's own value objects (`_value`, `_sum`, `_buckets`: the multiprocess mmap values under
# gunicorn). Should a release rename them, the public methods are used instead, with the same result.
Inc = Callable[[float], None]


def value_inc(child: Any) -> Inc:
    """`inc(amount)` of one counter or gauge series (a negative amount moves a gauge down)."""
    inc = getattr(getattr(child, "_value", None), "inc", None)
    return inc if callable(inc) else child.inc


class HistogramChild:
    """One histogram series: the bucket found by bisection, then the bucket and the sum incremented."""

    __slots__ = ("_bounds", "_bucket_incs", "_sum_inc", "observe")

    def __init__(self, child: Any) -> None:
        bounds = getattr(child, "_upper_bounds", None)
        buckets = getattr(child, "_buckets", None)
        total = getattr(getattr(child, "_sum", None), "inc", None)
        usable = bool(bounds) and buckets is not None and len(buckets) == len(bounds) and callable(total)
        self._bounds: list[float] = list(bounds) if usable else []
        self._bucket_incs: list[Inc] = [bucket.inc for bucket in buckets] if usable else []
        self._sum_inc: Inc | None = total if usable else None
        self.observe: Inc = self._fast if usable else child.observe

    def _fast(self, amount: float) -> None:
        self._sum_inc(amount)  # type: ignore[misc]
        # bisect_left: the first bucket whose upper bound is >= amount, i.e. prometheus-client's `amount <= bound`
        # (the last bound is +Inf, so there always is one).
        self._bucket_incs[bisect_left(self._bounds, amount)](1)


class RequestSeries(NamedTuple):
    """The series one request updates, found by (view, method, status) in one dict look-up."""

    requests_inc: Inc
    duration: HistogramChild
    queries: HistogramChild
    db_time: HistogramChild


_request_series: dict[tuple[str, str, int], RequestSeries] = {}
_cache_series: dict[tuple[str, bool], Inc] = {}
# The in-progress gauge has no labels: its one value, moved up and down around every request.
in_progress_inc = value_inc(http_requests_in_progress)


def request_series(*, view: str, method: str, status: int) -> RequestSeries:
    key = (view, method, status)
    series = _request_series.get(key)
    if series is None:  # bounded like the series themselves (views x methods x statuses)
        series = _request_series[key] = RequestSeries(
            value_inc(http_requests.labels(view=view, method=method, status=str(status))),
            HistogramChild(http_request_duration.labels(view=view, method=method)),
            HistogramChild(db_queries_per_request.labels(view=view)),
            HistogramChild(db_time_per_request.labels(view=view)),
        )
    return series


def cache_inc(*, cache: str, hit: bool) -> Inc:
    """`inc(amount)` of the `chowist_cache_requests_total` series for a cache (or named use) and a hit or a miss."""
    key = (cache, hit)
    inc = _cache_series.get(key)
    if inc is None:
        inc = _cache_series[key] = value_inc(cache_requests.labels(cache=cache, result="hit" if hit else "miss"))
    return inc


def fault_active_set(*, fault: str, active: bool) -> None:
    """Record whether a fault flag is on (called by whoever reads the faults file)."""
    fault_active.labels(fault=fault).set(1 if active else 0)


def build_info_set(*, version: str, git_sha: str) -> None:
    build_info.labels(version=version, git_sha=git_sha or "unknown").set(1)
