"""The monitoring config: every fact the rules, dashboards, LogQL and experiment reports share, once.

In the style of kubernetes-mixin's `config.libsonnet`: one object (`CONFIG`) holding job names, ports, metric
names, selectors, the user-facing view filter, the SLOs with their objectives and thresholds, the window sets
and the alert timings. Selectors are properties derived from the fields, so changing a field (a job name, a
metric name, the latency threshold) reaches slo/, prometheus/, grafana/, loki/ and experiments/ alike.

Consumers read `monitoring.config.CONFIG` at import time; nothing here reads the environment (the lab's own
ports come from experiments/lab/config.py, whose defaults are these).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PRODUCTION = "production"
LAB = "lab"
# The layer the lab adds on top of the generic SLO pack (slo/, grafana/, pack/): the consumer's freshness SLO and
# stalled alert, the replica, the exporters, the nginx edge, the Background jobs and Logs dashboards. A config
# without it is the pack any django-prometheus app gets.
CHOWIST_LAYER = "chowist"
# django-prometheus's view name for its own metrics URL (django_prometheus.urls): never user traffic, whatever
# the config lists, or every scrape would count as a fast, successful request.
METRICS_VIEW = "prometheus-django-metrics"
# django-prometheus's view label when no route matched.
UNNAMED_VIEW = "<unnamed view>"
# django-prometheus's default PROMETHEUS_LATENCY_BUCKETS (django_prometheus/conf): what an app that sets none exports.
DJANGO_PROMETHEUS_DEFAULT_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 25.0, 50.0, 75.0, float("inf"),
)  # fmt: skip
# Production windows are the windows' names; the lab set compresses them (see Windows.lab_scale).
WINDOW_SETS: tuple[str, ...] = (PRODUCTION, LAB)

ROOT = Path(__file__).resolve().parent.parent
# The generated rule files, one per window set: slo/ writes them, prometheus/ and the lab load them. Each
# file's name carries its set's name.
RULES_DIR = ROOT / "prometheus" / "rules"
RULE_FILE_NAMES = {PRODUCTION: "slo-production.rules.yml", LAB: "slo-lab.rules.yml"}


def rule_file_path(window_set: str) -> Path:
    return RULES_DIR / RULE_FILE_NAMES[window_set]


@dataclass(frozen=True)
class Jobs:
    """Prometheus scrape job names."""

    app: str = "chowist-app"
    worker: str = "chowist-worker"
    prometheus: str = "prometheus"
    postgres: str = "postgres"
    redis: str = "redis"
    nginx: str = "nginx"
    # mtail reading nginx's access log (prometheus/mtail/nginx.mtail): responses by status and their duration at
    # the edge.
    edge: str = "edge"
    # prometheus-process-exporter in the native lab: CPU and memory of every lab process, by component.
    processes: str = "processes"

    @property
    def chowist(self) -> tuple[str, ...]:
        """The jobs that serve users or do their work: an outage of one of them pages."""
        return (self.app, self.worker)


@dataclass(frozen=True)
class Ports:
    """Ports of the metrics contract (observability/METRICS.md); the lab may substitute its own."""

    app_metrics: int = 9101
    consumer_metrics: int = 9102
    prometheus: int = 9090
    alertmanager: int = 9093
    webhook: int = 9095
    # The exporters' own defaults.
    postgres_exporter: int = 9187
    redis_exporter: int = 9121
    nginx_exporter: int = 9113
    # mtail's own default; it turns nginx's access log into the edge's response counts.
    mtail: int = 3903
    # prometheus-process-exporter's own default.
    process_exporter: int = 9256


@dataclass(frozen=True)
class Metrics:
    """Metric names as the app and the consumer export them (observability/METRICS.md).

    Histograms are named by their base name; queries append _bucket, _sum and _count.
    """

    # django-prometheus (its middleware pair, database and cache backends): the names any Django app with the
    # library exports, so these rules and dashboards fit it too (README, "Use the lab on your own Django app").
    http_requests: str = "django_http_responses_total_by_status_view_method_total"
    http_request_duration: str = "django_http_requests_latency_seconds_by_view_method"
    # In flight = requests in minus responses out, at the outermost middleware.
    http_requests_before_middlewares: str = "django_http_requests_before_middlewares_total"
    http_responses_before_middlewares: str = "django_http_responses_before_middlewares_total"
    db_queries: str = "django_db_execute_total"
    db_query_duration: str = "django_db_query_duration_seconds"
    cache_gets: str = "django_cache_get_total"
    cache_hits: str = "django_cache_get_hits_total"
    cache_misses: str = "django_cache_get_misses_total"
    # The app's own (observability/metrics.py, workers/): what no library knows.
    build_info: str = "chowist_build_info"
    fault_active: str = "chowist_fault_active"
    # A telemetry signal (errors, tracing, metrics) that failed to start in a process that serves without it.
    telemetry_setup_failures: str = "chowist_telemetry_setup_failures_total"
    interactions_accepted: str = "chowist_interactions_accepted_total"
    interactions_recorded: str = "chowist_interactions_recorded_total"
    job_lag: str = "chowist_job_lag_seconds"
    job_duration: str = "chowist_job_duration_seconds"
    jobs: str = "chowist_jobs_total"
    queue_depth: str = "chowist_queue_depth"
    queue_oldest_pending_age: str = "chowist_queue_oldest_pending_age_seconds"
    inbox_backlog: str = "chowist_inbox_backlog"
    inbox_oldest_pending_age: str = "chowist_inbox_oldest_pending_age_seconds"
    # Read replica: the app's routing decisions, and the lag prometheus-postgres-exporter reads on the replica
    # (the query is in prometheus/postgres-exporter-queries.yml).
    db_read_routes: str = "chowist_db_read_routes_total"
    db_replica_fallbacks: str = "chowist_db_replica_fallbacks_total"
    replica_lag: str = "pg_replica_lag_seconds"
    # Responses by status as nginx answered them (mtail over its access log, health probes left out): the
    # availability SLI's source when a proxy runs, since nginx's own 502s never reach the app's metrics.
    edge_responses: str = "nginx_http_responses_total"
    # Time from nginx reading the request to it answering ($request_time, the same mtail program): what a client
    # waits, queueing in front of Django included. The latency SLI's source when a proxy runs.
    edge_request_duration: str = "nginx_http_request_duration_seconds"
    # How long a request waited between the front door stamping it (X-Request-Start) and Django starting it: the
    # accept backlog and gunicorn's queues, which the app's own latency histogram cannot see.
    request_queue_duration: str = "chowist_request_queue_seconds"
    # prometheus-process-exporter (native lab): CPU seconds per process group (`groupname`: the lab's component
    # names, the app's instances first), children included, so nginx's workers count with nginx.
    process_group_cpu: str = "namedprocess_namegroup_cpu_seconds_total"


@dataclass(frozen=True)
class Slo:
    """One SLO: its objective and, for the threshold SLOs, the bound a good event stays under."""

    name: str
    title: str
    objective: float
    page_alert: str
    ticket_alert: str
    # Seconds; must be a bucket boundary of the histogram the SLI reads (settings.PROMETHEUS_LATENCY_BUCKETS).
    threshold_s: float | None = None
    # The config layer (CHOWIST_LAYER) the SLO belongs to; None for the generic pack's SLOs.
    layer: str | None = None


@dataclass(frozen=True)
class Slos:
    availability: Slo = Slo(
        "availability", "Availability", 0.999, "AvailabilitySLOPageBurn", "AvailabilitySLOTicketBurn"
    )
    latency: Slo = Slo("latency", "Latency", 0.99, "LatencySLOPageBurn", "LatencySLOTicketBurn", threshold_s=0.3)
    freshness: Slo = Slo(
        "freshness",
        "Job freshness",
        0.99,
        "FreshnessSLOPageBurn",
        "FreshnessSLOTicketBurn",
        threshold_s=5.0,
        layer=CHOWIST_LAYER,
    )

    def __iter__(self) -> Iterator[Slo]:
        return iter((self.availability, self.latency, self.freshness))


@dataclass(frozen=True)
class BurnCondition:
    """Fire when the error ratio exceeds factor x budget over both the long and the short window."""

    factor: float
    long_window: str
    short_window: str


@dataclass(frozen=True)
class BurnAlert:
    severity: str
    conditions: tuple[BurnCondition, ...]


@dataclass(frozen=True)
class HealthTimings:
    """How long a plain (non-SLO) condition must last before it alerts, in one window set."""

    target_down_for: str
    consumer_stalled_window: str
    replica_lag_for: str


@dataclass(frozen=True)
class Windows:
    """The windows the SLI error ratio is recorded over, named as in production."""

    names: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    period: str = "30d"
    # Lab windows are the production ones divided by this factor: with 5 s scrapes the shortest (5m -> 25s)
    # still spans five scrapes, and the 14.4x page (1h -> 5m) can fire inside a 10-minute run.
    lab_scale: int = 12
    min_scrapes_per_window: int = 4


@dataclass(frozen=True)
class MonitoringConfig:
    service: str = "chowist"
    jobs: Jobs = field(default_factory=Jobs)
    ports: Ports = field(default_factory=Ports)
    metrics: Metrics = field(default_factory=Metrics)
    # Scrape and rule evaluation interval of every Prometheus config (native lab and compose).
    scrape_interval_s: int = 5
    # Views never counted as user traffic: the probes, and requests no route matched (METRICS.md).
    # `<unnamed view>` is django-prometheus's view label when no route matched.
    excluded_views: tuple[str, ...] = ("core:healthz", "core:readyz", UNNAMED_VIEW)
    slos: Slos = field(default_factory=Slos)
    windows: Windows = field(default_factory=Windows)
    # SRE Workbook, chapter 5, "multiwindow, multi-burn-rate alerts" (30-day period).
    burn_alerts: tuple[BurnAlert, ...] = (
        BurnAlert("page", (BurnCondition(14.4, "1h", "5m"), BurnCondition(6, "6h", "30m"))),
        BurnAlert("ticket", (BurnCondition(3, "1d", "2h"), BurnCondition(1, "3d", "6h"))),
    )
    health_timings: dict[str, HealthTimings] = field(
        default_factory=lambda: {
            PRODUCTION: HealthTimings(target_down_for="2m", consumer_stalled_window="10m", replica_lag_for="2m"),
            # Three and twelve scrapes: quick enough for a 10-minute experiment, slow enough not to flap.
            LAB: HealthTimings(target_down_for="15s", consumer_stalled_window="1m", replica_lag_for="15s"),
        }
    )
    # A replica further behind than this serves reads older than the app's read-your-writes window
    # (DB_READ_YOUR_WRITES_S, 5 s by default): a client may miss its own write once the window ends.
    replica_lag_threshold_s: float = 5.0
    runbook_base_url: str = "slo/runbooks/"
    # Alertmanager timings: a 10-minute experiment sees a notification within seconds of the alert firing.
    group_wait: str = "10s"
    group_interval: str = "30s"
    repeat_interval: str = "1h"
    webhook_path: str = "/alerts"
    # Layers on top of the generic pack (CHOWIST_LAYER or none); the pack's configs have none.
    layers: tuple[str, ...] = (CHOWIST_LAYER,)
    # The window sets whose rule files are generated (RULE_FILE_NAMES).
    window_sets: tuple[str, ...] = WINDOW_SETS
    # The app's PROMETHEUS_LATENCY_BUCKETS when the config knows them: the generator warns when the latency
    # threshold is not among them. None: django-prometheus's defaults are assumed for the warning only.
    latency_buckets: tuple[float, ...] | None = None
    # The Database & cache dashboard's rows: only where the app uses django-prometheus's DB / cache backends.
    database_metrics: bool = True
    cache_metrics: bool = True

    # --- layers and jobs ----------------------------------------------------------------------------------
    def has_layer(self, layer: str) -> bool:
        return layer in self.layers

    @property
    def enabled_slos(self) -> tuple[Slo, ...]:
        """The SLOs the rules and dashboards carry: the generic ones and those of the enabled layers."""
        return tuple(slo for slo in self.slos if slo.layer is None or slo.layer in self.layers)

    @property
    def paged_jobs(self) -> tuple[str, ...]:
        """Jobs whose outage pages: they serve users or do their work."""
        return self.jobs.chowist if self.has_layer(CHOWIST_LAYER) else (self.jobs.app,)

    @property
    def ticketed_jobs(self) -> tuple[str, ...]:
        """The lab's other jobs (Prometheus, exporters, the edge): down hides metrics, serves no user.

        Listed by name, never "every other job": a shared Prometheus scrapes targets that are not ours.
        """
        if not self.has_layer(CHOWIST_LAYER):
            return ()
        jobs = self.jobs
        return (jobs.prometheus, jobs.postgres, jobs.redis, jobs.nginx, jobs.edge, jobs.processes)

    @property
    def alert_prefix(self) -> str:
        """CamelCase of the service ("chowist" -> "Chowist", "my-shop" -> "MyShop") for its plain alerts."""
        return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", self.service) if part)

    @property
    def target_down_alert(self) -> str:
        return f"{self.alert_prefix}TargetDown"

    @property
    def all_excluded_views(self) -> tuple[str, ...]:
        """The configured views plus the two django-prometheus names that are never user traffic."""
        return tuple(dict.fromkeys((*self.excluded_views, UNNAMED_VIEW, METRICS_VIEW)))

    # --- selectors (label matchers without braces, to combine with others) ------------------------------
    @property
    def app_selector(self) -> str:
        return f'job="{self.jobs.app}"'

    @property
    def edge_selector(self) -> str:
        return f'job="{self.jobs.edge}"'

    @property
    def worker_selector(self) -> str:
        return f'job="{self.jobs.worker}"'

    @property
    def chowist_jobs_selector(self) -> str:
        return f'job=~"{"|".join(self.jobs.chowist)}"'

    @property
    def paged_jobs_selector(self) -> str:
        return f'job=~"{"|".join(self.paged_jobs)}"'

    @property
    def user_facing_selector(self) -> str:
        """The SLOs' user-facing views: every view but the probes and unrouted requests."""
        return f'view!~"{"|".join(self.all_excluded_views)}"'

    @property
    def server_error_selector(self) -> str:
        return 'status=~"5.."'

    @property
    def slo_selector(self) -> str:
        return f'service="{self.service}"'

    # --- thresholds in the units other consumers speak ----------------------------------------------------
    @property
    def latency_threshold_ms(self) -> float:
        """The latency SLO's bound in milliseconds (the unit of the log lines' duration_ms)."""
        threshold = self.slos.latency.threshold_s
        assert threshold is not None
        return round(threshold * 1000, 6)

    @property
    def page_factors(self) -> tuple[float, ...]:
        return tuple(c.factor for alert in self.burn_alerts if alert.severity == "page" for c in alert.conditions)

    @property
    def request_buckets_s(self) -> tuple[float, ...]:
        """Bucket bounds of the histograms that time whole requests at the edge and their wait in front of Django.

        A coarse ladder, then the latency threshold with neighbours on both sides (half of it up to twice it), so
        the SLI's bucket is exact and a p95 near the threshold is resolved, not interpolated between 0.25 and 1.
        """
        threshold = self.slos.latency.threshold_s
        assert threshold is not None
        near = {round(threshold * factor, 6) for factor in REQUEST_BUCKET_THRESHOLD_FACTORS}
        return tuple(sorted(set(REQUEST_BUCKET_LADDER_S) | near))


# The ladder of request-timing buckets (Prometheus clients' default ladder, with steps between 0.5 and 10 s: the
# first overload run read an edge p95 of 4.0 s, interpolated between 2.5 and 5, where Locust measured 3.0 s; and on
# to nginx's 60 s read timeout: users-2000 on a saturated box waited 18 s at p95, which a 10 s top bucket capped)
# and, around the latency threshold, its multiples: for 300 ms, 150, 200, 250, 300, 350, 400, 500 and 600 ms.
REQUEST_BUCKET_LADDER_S: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
    60.0,
)  # fmt: skip
REQUEST_BUCKET_THRESHOLD_FACTORS: tuple[float, ...] = (1 / 2, 2 / 3, 5 / 6, 1, 7 / 6, 4 / 3, 5 / 3, 2)

CONFIG = MonitoringConfig()


def le_matcher(threshold_s: float) -> str:
    """The `le` matcher of the histogram bucket bounded by `threshold_s`.

    The Python client writes integer bounds as "5.0", other clients as "5": a whole number matches both.
    """
    if float(threshold_s).is_integer():
        whole = int(threshold_s)
        return f'le=~"{whole}|{whole}\\\\.0"'
    return f'le="{threshold_s:g}"'
