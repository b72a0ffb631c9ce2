"""The app's own Prometheus metrics, what no library knows: business counters, build info, fault flags.

Requests, queries and cache reads are counted by django-prometheus (settings: its middleware pair, database and
cache backends); the names of both are the contract in observability/METRICS.md.

Metric objects are created when this module is first imported. Under gunicorn that happens in each worker
after the fork, with PROMETHEUS_MULTIPROC_DIR already exported by gunicorn.conf.py, so every value lives in
a per-process mmap file that the master aggregates (see exposition.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
# Every signal's series exists from the start at 0, so "never failed" and "not measured" are told apart.
TELEMETRY_SIGNALS = ("errors", "tracing", "metrics")
telemetry_setup_failures = Counter(
    "chowist_telemetry_setup_failures",
    "Telemetry signals that failed to start in a process, by signal: that process serves without the signal.",
    ["signal"],
)
for _signal in TELEMETRY_SIGNALS:
    telemetry_setup_failures.labels(signal=_signal)


def fault_active_set(*, fault: str, active: bool) -> None:
    """Record whether a fault flag is on (called by whoever reads the faults file)."""
    fault_active.labels(fault=fault).set(1 if active else 0)


def build_info_set(*, version: str, git_sha: str) -> None:
    build_info.labels(version=version, git_sha=git_sha or "unknown").set(1)
