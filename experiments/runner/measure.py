"""What one measured run produced, from Prometheus, Locust and the alert webhook.

The window is bracketed by two scrapes: one after the lab went quiet before Locust started, one after
Locust stopped and the consumer drained. Counters read at those scrapes differ by exactly what happened
in between; nothing but Locust sends user-facing traffic then, so Prometheus's request count must equal
Locust's (the lab's self-check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from experiments.lab.webhook import read_alerts
from experiments.runner import queries as q
from experiments.runner.config import LATENCY_AGREEMENT, THROUGHPUT_AGREEMENT
from experiments.runner.loadgen import LocustResult
from experiments.runner.prom import Prometheus
from experiments.runner.readback import ReadBack
from monitoring.config import CONFIG
from slo.policy import duration_seconds, window_duration

COUNTERS = {
    "requests": q.REQUESTS,
    "requests_5xx": q.REQUESTS_5XX,
    "interactions_accepted": q.INTERACTIONS_ACCEPTED,
    "interactions_recorded": q.INTERACTIONS_RECORDED,
    "jobs_processed": q.JOBS_PROCESSED,
    "edge_responses": q.EDGE_RESPONSES,
    "edge_responses_5xx": q.EDGE_RESPONSES_5XX,
    "edge_latency_total": q.EDGE_LATENCY_TOTAL,
    "edge_latency_good": q.EDGE_LATENCY_GOOD,
    "app_latency_total": q.APP_LATENCY_TOTAL,
    "app_latency_good": q.APP_LATENCY_GOOD,
}


def counters_read(prom: Prometheus) -> dict[str, float]:
    return {name: prom.scalar(expr) for name, expr in COUNTERS.items()}


@dataclass
class Agreement:
    """The lab's self-check for one run: Prometheus and Locust saw the same traffic."""

    locust_requests: int
    prometheus_requests: int
    # Requests that never reached the app (connection errors) plus those in flight at the edges.
    tolerance: int
    locust_rps: float
    prometheus_rps: float

    @property
    def count_ok(self) -> bool:
        return abs(self.prometheus_requests - self.locust_reached_app) <= self.tolerance

    @property
    def locust_reached_app(self) -> int:
        return self.locust_requests - self.connection_errors

    connection_errors: int = 0

    @property
    def rps_diff(self) -> float:
        return abs(self.prometheus_rps - self.locust_rps) / self.locust_rps if self.locust_rps else 0.0

    @property
    def rps_ok(self) -> bool:
        return self.rps_diff <= THROUGHPUT_AGREEMENT

    @property
    def ok(self) -> bool:
        return self.locust_requests > 0 and self.count_ok and self.rps_ok

    def as_dict(self) -> dict:
        return {
            "locust_requests": self.locust_requests,
            "prometheus_requests": self.prometheus_requests,
            "connection_errors": self.connection_errors,
            "tolerance": self.tolerance,
            "locust_rps": round(self.locust_rps, 3),
            "prometheus_rps": round(self.prometheus_rps, 3),
            "rps_diff": round(self.rps_diff, 5),
            "passed": self.ok,
        }


@dataclass
class LatencyAgreement:
    """The self-check for latency, one run: the latency SLI's share of requests under the threshold (counted at its
    source over the window) against the share Locust timed under it (its response-time distribution).

    Checked when the SLI was measured at the edge: nginx times the whole wait, as a client does. On the direct path
    the app's histogram is blind to queueing in front of Django, so under load it cannot agree: the figures are
    shown, not checked.
    """

    source: str  # "edge" (nginx through mtail) or "app" (the fallback)
    sli_good: int
    sli_total: int
    locust_share: float | None
    threshold_ms: float

    @property
    def sli_share(self) -> float | None:
        return self.sli_good / self.sli_total if self.sli_total else None

    @property
    def diff(self) -> float | None:
        if self.sli_share is None or self.locust_share is None:
            return None
        return abs(self.sli_share - self.locust_share)

    @property
    def checked(self) -> bool:
        return self.source == "edge"

    @property
    def ok(self) -> bool:
        if not self.checked:
            return True
        return self.diff is not None and self.diff <= LATENCY_AGREEMENT

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "threshold_ms": self.threshold_ms,
            "sli_good": self.sli_good,
            "sli_total": self.sli_total,
            "sli_share": None if self.sli_share is None else round(self.sli_share, 6),
            "locust_share": None if self.locust_share is None else round(self.locust_share, 6),
            "diff": None if self.diff is None else round(self.diff, 6),
            "checked": self.checked,
            "passed": self.ok,
        }


def latency_agreement(deltas: dict[str, float], locust: LocustResult) -> LatencyAgreement:
    """The latency self-check from a run's counter deltas: the edge's counts when nginx timed the run's requests,
    else the app's (the same choice the latency SLI makes)."""
    source = "edge" if deltas.get("edge_latency_total", 0.0) > 0 else "app"
    threshold_ms = CONFIG.latency_threshold_ms
    return LatencyAgreement(
        source=source,
        sli_good=round(deltas.get(f"{source}_latency_good", 0.0)),
        sli_total=round(deltas.get(f"{source}_latency_total", 0.0)),
        locust_share=locust.share_within_ms(threshold_ms),
        threshold_ms=threshold_ms,
    )


def latency_breakdown(*, prom: Prometheus, t1: float, window_s: int) -> dict[str, dict[str, float]]:
    """p50/p95/p99 and mean in ms over the window at the edge, in the app and waiting in front of Django (the last
    two need a front door: the app cannot time its own queue)."""
    out: dict[str, dict[str, float]] = {}
    for source in q.LATENCY_SOURCES:
        values = {
            f"p{round(qq * 100)}": prom.scalar(q.latency_quantile(source, qq, window_s), at=t1)
            for qq in (0.5, 0.95, 0.99)
        }
        values["mean"] = prom.scalar(q.latency_mean(source, window_s), at=t1)
        if all(not math.isfinite(v) for v in values.values()):
            continue
        out[source] = {k: round(_finite(v) * 1000, 1) for k, v in values.items()}
    return out


@dataclass(frozen=True)
class RunWindow:
    """One measured run of one variant: which it was, its window and what happened in it (unix seconds)."""

    variant: str
    repeat: int
    users: int
    t0: float  # the scrape before Locust started
    t1: float  # the scrape after Locust stopped and the consumer drained
    load_start: float
    load_end: float
    # Whether the consumer drained what the run enqueued before the window closed.
    drained: bool = True
    # The faults switched on and off during the load (labdriver.Schedule.applied).
    events: tuple[dict, ...] = ()

    @property
    def seconds(self) -> int:
        """The window as a whole number of seconds, for PromQL ranges."""
        return max(1, math.ceil(self.t1 - self.t0))


@dataclass
class RunMeasurement:
    """One measured run of one variant (A/B experiments repeat each variant)."""

    window: RunWindow
    locust: LocustResult
    counters: dict[str, float]
    agreement: Agreement
    job_lag_s: dict[str, float]
    slo: dict[str, dict[str, float]]
    alerts_fired: list[dict]
    lab_rss_by_component_mb: dict[str, float] = field(default_factory=dict)
    # experiments/runner/resources.py samples, one per progress tick of the load.
    resource_samples: list[dict] = field(default_factory=list)
    # The read-your-writes check (readback.py), when the experiment expects it.
    read_back: ReadBack | None = None
    # Where the database work went (db_measure); empty on SQLite.
    database: dict[str, Any] = field(default_factory=dict)
    # Per task: executions by outcome and lag percentiles (jobs_measure): the thumbnail job of uploads, the drain.
    jobs_by_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The latency self-check (None in runs measured before it existed) and where the time went (ms per source).
    latency_agreement: LatencyAgreement | None = None
    latency_breakdown_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def variant(self) -> str:
        return self.window.variant

    @property
    def repeat(self) -> int:
        return self.window.repeat

    @property
    def lab_rss_peak_mb(self) -> float:
        return round(sum(self.lab_rss_by_component_mb.values()), 1)

    @property
    def error_ratio_5xx(self) -> float:
        total = self.counters["requests"]
        return self.counters["requests_5xx"] / total if total else 0.0


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def run_measure(
    *,
    prom: Prometheus,
    window: RunWindow,
    before: dict[str, float],
    after: dict[str, float],
    locust: LocustResult,
    alerts_file: Path,
    window_set: str,
    lab_rss_mb: dict[str, float],
    resource_samples: list[dict] | None = None,
    read_back: ReadBack | None = None,
    database_url: str = "",
) -> RunMeasurement:
    """The run's numbers: counter differences between the window's edges, Prometheus's view over the window,
    alerts; `lab_rss_mb` is the lab's peak resident memory by component."""
    deltas = {name: max(after[name] - before[name], 0.0) for name in COUNTERS}
    window_s, t1 = window.seconds, window.t1
    prom_requests = round(deltas["requests"])
    # The read-your-writes probe's requests reach views too: the clients' side of the count includes them.
    sent = locust.app_view_requests + (read_back.requests if read_back else 0)
    agreement = Agreement(
        locust_requests=sent,
        prometheus_requests=prom_requests,
        connection_errors=locust.connection_errors,
        tolerance=window.users,
        # Static files never reach a view: both sides count only the requests a view answered.
        locust_rps=sent / locust.active_s if locust.active_s else 0.0,
        # Same active interval as Locust's own rate: the check is then exactly "same requests counted".
        prometheus_rps=prom_requests / locust.active_s if locust.active_s else 0.0,
    )
    lag = {
        f"p{round(qq * 100)}": _finite(prom.scalar(q.job_lag_quantile(qq, window_s), at=t1)) for qq in (0.5, 0.95, 0.99)
    }
    lag["max"] = max(_finite(prom.scalar(q.job_lag_max(window_s), at=t1)), lag["p99"])
    return RunMeasurement(
        window=window,
        locust=locust,
        counters=deltas,
        agreement=agreement,
        job_lag_s=lag,
        slo=slo_measure(prom=prom, t1=t1, window_s=window_s, window_set=window_set),
        alerts_fired=alerts_measure(prom=prom, alerts_file=alerts_file, t0=window.t0, t1=t1, origin=window.load_start),
        lab_rss_by_component_mb={name: round(mb, 1) for name, mb in lab_rss_mb.items()},
        resource_samples=list(resource_samples or []),
        read_back=read_back,
        database=db_measure(prom=prom, t1=t1, window_s=window_s, active_s=locust.active_s, database_url=database_url),
        jobs_by_task=jobs_measure(prom=prom, t1=t1, window_s=window_s),
        latency_agreement=latency_agreement(deltas, locust),
        latency_breakdown_ms=latency_breakdown(prom=prom, t1=t1, window_s=window_s),
    )


def jobs_measure(*, prom: Prometheus, t1: float, window_s: int) -> dict[str, dict[str, Any]]:
    """Per task that ran in the window: executions by outcome and the lag p50/p95/max (enqueue to start; max is
    the histogram's p99, a histogram has no maximum)."""
    out: dict[str, dict[str, Any]] = {}
    for labels, value in prom.vector(q.jobs_by_task_outcome(window_s), at=t1):
        if value >= 0.5:
            task = out.setdefault(labels.get("task", "?"), {"outcomes": {}})
            task["outcomes"][labels.get("outcome", "?")] = round(value)
    for quantile, key in ((0.5, "lag_p50_s"), (0.95, "lag_p95_s"), (0.99, "lag_p99_s")):
        for labels, value in prom.vector(q.job_lag_quantile_by_task(quantile, window_s), at=t1):
            if labels.get("task") in out:
                out[labels["task"]][key] = round(_finite(value), 3)
    return dict(sorted(out.items()))


def db_measure(*, prom: Prometheus, t1: float, window_s: int, active_s: float, database_url: str) -> dict[str, Any]:
    """Queries per second per Django alias, the reads the replica router sent each way and the replica's share,
    commits per second per PostgreSQL server in the lab's database, and the highest replication lag sampled.
    Rates divide by the load's active seconds: nothing else queries in the window but the drain."""
    per_s = active_s or float(window_s)

    def by(query: str, label: str) -> dict[str, float]:
        return {m.get(label, "?"): v for m, v in prom.vector(query, at=t1) if math.isfinite(v)}

    reads = by(q.db_reads_by_database(window_s), "database")
    out: dict[str, Any] = {
        "queries_per_s": {
            a: round(v / per_s, 1) for a, v in sorted(by(q.db_queries_by_alias(window_s), "alias").items())
        },
        "reads_routed": {d: round(v) for d, v in sorted(reads.items())},
        "replica_read_share": round(reads.get("replica", 0.0) / sum(reads.values()), 4) if sum(reads.values()) else 0.0,
    }
    datname = urlparse(database_url).path.lstrip("/") if database_url.startswith("postgres") else ""
    if datname:
        commits = by(q.db_commits_by_server(window_s, datname), "server")
        out["commits_per_s"] = {s: round(v / per_s, 1) for s, v in sorted(commits.items())}
        out["replica_lag_max_s"] = round(_finite(prom.scalar(q.replica_lag_max(window_s), at=t1)), 3)
    return out


def slo_measure(*, prom: Prometheus, t1: float, window_s: int, window_set: str) -> dict[str, dict[str, float]]:
    """Per SLO over the window: the SLI (the spec's own queries), the peak burn rate, the budget spent.

    budget_consumed is the share of the whole period's error budget this window spent, at the
    window's traffic rate: (error ratio / budget) x (window / period). The period is the lab's
    compressed one when the lab window set is loaded.
    """
    period_s = duration_seconds(window_duration(CONFIG.windows.period, window_set=window_set))
    out = {}
    for spec, total_query, error_query in q.slo_sli_queries(window_s):
        total = prom.scalar(total_query, at=t1)
        errors = prom.scalar(error_query, at=t1)
        error_ratio = min(max(errors / total, 0.0), 1.0) if total > 0 else 0.0
        out[spec.slo] = {
            "sli": round(1 - error_ratio, 6),
            "objective": spec.objective,
            "burn_rate_max": round(_finite(prom.scalar(q.burn_rate_max(spec.slo, window_s), at=t1)), 3),
            "budget_consumed": round(error_ratio / spec.error_budget * window_s / period_s, 6),
        }
    return out


def alerts_measure(*, prom: Prometheus, alerts_file: Path, t0: float, t1: float, origin: float) -> list[dict]:
    """Alerts firing during the window: first seen firing in Prometheus and first notified to the webhook.

    first_seen_s counts from `origin` (Locust's start), the earlier of the two sources.
    """
    seen: dict[str, dict] = {}
    step = 1.0
    for series in prom.range(q.ALERTS_FIRING, start=t0, end=t1, step=step):
        name = series.labels.get("alertname", "?")
        first = min(t for t, v in series.points if v > 0) if series.points else None
        if first is None:
            continue
        entry = seen.setdefault(name, {"alertname": name, "severity": series.labels.get("severity", "")})
        entry["first_seen_s"] = round(min(entry.get("first_seen_s", math.inf), first - origin), 1)
        # Still firing from before the window (burn-rate windows outlast the fault that caused them).
        entry["firing_at_start"] = entry.get("firing_at_start", False) or first <= t0 + step
    for note in read_alerts(alerts_file):
        received = float(note.get("received_at_unix") or 0)
        if not t0 <= received <= t1:
            continue
        for alert in note.get("payload", {}).get("alerts", []):
            if alert.get("status") != "firing":
                continue
            labels = alert.get("labels", {})
            name = labels.get("alertname", "?")
            entry = seen.setdefault(name, {"alertname": name, "severity": labels.get("severity", "")})
            entry["notified_s"] = round(min(entry.get("notified_s", math.inf), received - origin), 1)
            entry.setdefault("first_seen_s", entry["notified_s"])
    return sorted(seen.values(), key=lambda a: a["first_seen_s"])
