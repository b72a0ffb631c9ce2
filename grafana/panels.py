"""Every dashboard, row and panel as data: the one declarative source the generator (grafana.generate) renders.

The experiments report imports `promql_queries()` to plot exactly the PromQL the dashboards show, after
`render_promql()` replaces Grafana's variables. Metric names and labels follow observability/METRICS.md.
Each dashboard's `version` is the number the experiment report quotes; bump it when its panels change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from loki import queries as logql
from monitoring.config import CONFIG

PanelKind = Literal["timeseries", "stat", "table", "logs"]
Datasource = Literal["prometheus", "loki"]

# Grafana picks the rate window; $__rate_interval is at least four scrape intervals, so rate() always has samples.
RATE = "$__rate_interval"

M = CONFIG.metrics
APP = CONFIG.app_selector
EDGE = CONFIG.edge_selector
# process-exporter's groups for the app instances (the lab names them app, app-2, ...).
APP_GROUPS = "app(-[0-9]+)?"
WORKER = CONFIG.worker_selector
CHOWIST_JOBS = CONFIG.chowist_jobs_selector
USER_FACING = CONFIG.user_facing_selector
SERVER_ERROR = CONFIG.server_error_selector
SLO_SELECTOR = CONFIG.slo_selector
POSTGRES = f'job="{CONFIG.jobs.postgres}"'
_PERIOD_DAYS = CONFIG.windows.period.removesuffix("d")
REDIS = f'job="{CONFIG.jobs.redis}"'
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    # Tables and stats of current state read one instant; graphs read a range.
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    kind: PanelKind
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    datasource: Datasource = "prometheus"
    width: int = 12
    height: int = 8
    # A scrape job the panel needs that only the compose stack runs (the exporters); None means the native
    # lab has data for it, which grafana/tests/test_promql_live.py proves.
    requires_job: str | None = None


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    version: int
    description: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = field(default=("chowist",))

    @property
    def panels(self) -> tuple[Panel, ...]:
        return tuple(panel for row in self.rows for panel in row.panels)


def _quantile(q: float, metric: str, selector: str, by: str = "") -> str:
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RATE}])))"


def _quantiles(metric: str, selector: str) -> tuple[Query, ...]:
    return tuple(Query(_quantile(q, metric, selector), legend=f"p{round(q * 100)}") for q in QUANTILES)


def _ratio_or_zero(bad: str, total: str, by: str) -> str:
    """bad/total per `by`, reading 0 (not "no data") for groups that have traffic but no bad events."""
    return f"(sum by ({by}) ({bad}) or 0 * sum by ({by}) ({total})) / sum by ({by}) ({total})"


def _mean(metric: str, selector: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}_sum{{{selector}}}[{RATE}])) / sum by ({by}) (rate({metric}_count{{{selector}}}[{RATE}]))"


# --- Service overview ----------------------------------------------------------------------------------
_REQUESTS = f"rate({M.http_requests}{{{APP}}}[{RATE}])"
_REQUESTS_5XX = f"rate({M.http_requests}{{{APP}, {SERVER_ERROR}}}[{RATE}])"

SERVICE_OVERVIEW = Dashboard(
    uid="chowist-service-overview",
    title="Chowist / Service overview",
    version=3,
    description="RED per view, saturation and build: is the app healthy, and which view is not?",
    rows=(
        Row(
            "Traffic and errors",
            (
                Panel(
                    "Request rate by view",
                    "timeseries",
                    (Query(f"sum by (view) ({_REQUESTS})", "{{view}}"),),
                    unit="reqps",
                ),
                Panel(
                    "Responses by status",
                    "timeseries",
                    (Query(f"sum by (status) ({_REQUESTS})", "{{status}}"),),
                    unit="reqps",
                ),
                Panel(
                    "5xx ratio by view",
                    "timeseries",
                    (Query(_ratio_or_zero(_REQUESTS_5XX, _REQUESTS, "view"), "{{view}}"),),
                    unit="percentunit",
                    description="Share of each view's responses that were 5xx; the availability SLO counts user-facing views.",
                ),
                Panel(
                    "Total request rate and 5xx rate",
                    "timeseries",
                    (
                        Query(f"sum({_REQUESTS})", "all"),
                        Query(f"sum({_REQUESTS_5XX}) or 0 * sum({_REQUESTS})", "5xx"),
                    ),
                    unit="reqps",
                ),
            ),
        ),
        Row(
            "Duration",
            (
                Panel(
                    "Latency p50 / p95 / p99 (user-facing views)",
                    "timeseries",
                    _quantiles(M.http_request_duration, f"{APP}, {USER_FACING}"),
                    unit="s",
                    description=f"The latency SLO counts requests under {CONFIG.latency_threshold_ms:g} ms.",
                ),
                Panel(
                    "Latency p95 by view",
                    "timeseries",
                    (Query(_quantile(0.95, M.http_request_duration, APP, by="view"), "{{view}}"),),
                    unit="s",
                ),
                Panel(
                    "Latency p95: at the front door, in the app, queueing in front of the app",
                    "timeseries",
                    (
                        Query(_quantile(0.95, M.edge_request_duration, EDGE), "edge (what clients wait)"),
                        Query(_quantile(0.95, M.http_request_duration, f"{APP}, {USER_FACING}"), "app (Django)"),
                        Query(_quantile(0.95, M.request_queue_duration, APP), "queueing before Django"),
                    ),
                    unit="s",
                    width=24,
                    description=(
                        "The edge is nginx's own time per request (mtail over its access log), from reading the "
                        "request to answering it: the latency SLO reads it. The app's is Django's, from its first "
                        "middleware on. Queueing is the wait between nginx handing the request on (X-Request-Start) "
                        "and Django starting it: the accept backlog and gunicorn's queues, which the app's own "
                        "series never see. Without the front door (PROXY=off) only the app's line exists."
                    ),
                ),
            ),
        ),
        Row(
            "Saturation",
            (
                Panel(
                    "Requests in progress",
                    "timeseries",
                    (
                        Query(
                            f"sum({M.http_requests_before_middlewares}{{{APP}}})"
                            f" - sum({M.http_responses_before_middlewares}{{{APP}}})",
                            "in progress",
                        ),
                    ),
                    description="Requests in, minus responses out (django-prometheus's outermost counters), over "
                    "all gunicorn workers; near workers x threads means requests queue.",
                ),
                Panel(
                    "CPU by process group",
                    "timeseries",
                    (
                        # The app first: its job's counter is the gunicorn master's and its workers' together
                        # (observability.exposition.ProcessTreeCollector), wherever the app runs.
                        Query(f"sum(rate(process_cpu_seconds_total{{{APP}}}[{RATE}]))", f"{CONFIG.jobs.app} (workers)"),
                        # Then every other lab process, by component (prometheus-process-exporter, native lab; the
                        # app's own groups are left out, the line above has them).
                        Query(
                            f"sum by (groupname) (rate({M.process_group_cpu}"
                            f'{{job="{CONFIG.jobs.processes}",groupname!~"{APP_GROUPS}"}}[{RATE}]))',
                            "{{groupname}}",
                        ),
                    ),
                    unit="short",
                    description="CPU cores used (1 = one full core; this machine has 2): the app's gunicorn master "
                    "and workers first, then each other process of the native lab by component (nginx with its "
                    "workers, mtail, the consumer, Prometheus, Alertmanager, the webhook, exporters), as "
                    "prometheus-process-exporter reads /proc: the same process trees the experiment report samples.",
                ),
                Panel(
                    "Resident memory by process group",
                    "timeseries",
                    (Query(f"sum by (job) (process_resident_memory_bytes{{{CHOWIST_JOBS}}})", "{{job}}"),),
                    unit="bytes",
                ),
                Panel(
                    "Scrape targets up",
                    "stat",
                    (Query(f"up{{{CHOWIST_JOBS}}}", "{{job}} {{instance}}", instant=True),),
                    unit="none",
                    description="1 when Prometheus could scrape the target on its last attempt.",
                ),
            ),
        ),
        Row(
            "Build and faults",
            (
                Panel(
                    "Build info",
                    "table",
                    (Query(f"max by (version, git_sha) ({M.build_info}{{{APP}}})", instant=True),),
                    unit="none",
                ),
                Panel(
                    "Fault flags active",
                    "timeseries",
                    (Query(f"max by (fault) ({M.fault_active})", "{{fault}}"),),
                    unit="none",
                    description="1 while an injected fault (manage.py fault set …) is on: read other panels with this in mind.",
                ),
            ),
        ),
    ),
)

# --- Database & cache ----------------------------------------------------------------------------------
_CACHE = f"rate({M.cache_gets}{{{APP}}}[{RATE}])"
_CACHE_HITS = f"rate({M.cache_hits}{{{APP}}}[{RATE}])"
_CACHE_MISSES = f"rate({M.cache_misses}{{{APP}}}[{RATE}])"
_QUERIES = f"rate({M.db_queries}{{{APP}}}[{RATE}])"
_EXPORTER_NOTE = "Needs the {job} exporter, which only the compose stack runs (the native lab has no data here)."

DATABASE_AND_CACHE = Dashboard(
    uid="chowist-database-cache",
    title="Chowist / Database & cache",
    version=3,
    description="Where request time goes: queries per request, query time, and how often caches hit.",
    rows=(
        Row(
            "Database",
            (
                Panel(
                    "Queries per request",
                    "timeseries",
                    (Query(f"sum({_QUERIES}) / sum({_REQUESTS})", "queries per request"),),
                    description="Statements executed (django-prometheus's database backends) per response, over all "
                    "views: a jump here with flat traffic is an N+1 query.",
                ),
                Panel(
                    "Queries per second by database",
                    "timeseries",
                    (Query(f"sum by (alias, vendor) ({_QUERIES})", "{{alias}} ({{vendor}})"),),
                    unit="ops",
                ),
                Panel(
                    "Query duration p95 by database",
                    "timeseries",
                    (Query(_quantile(0.95, M.db_query_duration, APP, by="alias"), "{{alias}}"),),
                    unit="s",
                ),
                Panel(
                    "Share of request time spent in the database",
                    "timeseries",
                    (
                        Query(
                            f"sum(rate({M.db_query_duration}_sum{{{APP}}}[{RATE}]))"
                            f" / sum(rate({M.http_request_duration}_sum{{{APP}}}[{RATE}]))",
                            "database",
                        ),
                    ),
                    unit="percentunit",
                ),
            ),
        ),
        Row(
            "Cache",
            (
                Panel(
                    "Cache hit ratio by backend",
                    "timeseries",
                    (Query(_ratio_or_zero(_CACHE_HITS, _CACHE, "backend"), "{{backend}}"),),
                    unit="percentunit",
                ),
                Panel(
                    "Cache reads by backend: hits and misses",
                    "timeseries",
                    (
                        Query(f"sum by (backend) ({_CACHE_HITS})", "{{backend}} hit"),
                        Query(f"sum by (backend) ({_CACHE_MISSES})", "{{backend}} miss"),
                    ),
                    unit="reqps",
                ),
            ),
        ),
        Row(
            "Read replica",
            (
                Panel(
                    "Reads by database",
                    "timeseries",
                    (
                        Query(
                            f"sum by (database) (rate({M.db_read_routes}{{{APP}}}[{RATE}])) or on() vector(0)",
                            "{{database}}",
                        ),
                    ),
                    unit="ops",
                    description=(
                        "Where reads inside requests went (DATABASE_REPLICA_URL): the replica, or the primary for a "
                        "client that wrote recently or while the replica is down. 0 without a replica."
                    ),
                ),
                Panel(
                    "Replica fallbacks",
                    "timeseries",
                    (
                        Query(
                            f"sum by (reason) (increase({M.db_replica_fallbacks}{{{APP}}}[{RATE}])) or on() vector(0)",
                            "{{reason}}",
                        ),
                    ),
                    description="Times the app found the replica unusable and read from the primary instead (log: replica_unavailable).",
                ),
                Panel(
                    "Replication lag",
                    "timeseries",
                    (Query(f"max by (server) ({M.replica_lag}{{{POSTGRES}}})", "{{server}}"),),
                    unit="s",
                    description=(
                        f"Seconds the replica's data is behind (0 on the primary). Above "
                        f"{CONFIG.replica_lag_threshold_s:g} s, ChowistReplicaLagging opens a ticket. "
                        + _EXPORTER_NOTE.format(job=CONFIG.jobs.postgres)
                    ),
                    requires_job=CONFIG.jobs.postgres,
                ),
            ),
        ),
        Row(
            "PostgreSQL and Redis exporters (compose stack)",
            (
                Panel(
                    "PostgreSQL backends by database",
                    "timeseries",
                    (Query(f"sum by (datname) (pg_stat_database_numbackends{{{POSTGRES}}})", "{{datname}}"),),
                    description=_EXPORTER_NOTE.format(job=CONFIG.jobs.postgres),
                    requires_job=CONFIG.jobs.postgres,
                ),
                Panel(
                    "PostgreSQL transactions per second",
                    "timeseries",
                    (
                        Query(
                            f"sum by (server, datname) (rate(pg_stat_database_xact_commit{{{POSTGRES}}}[{RATE}]))",
                            "{{server}} {{datname}} commits",
                        ),
                        Query(
                            f"sum by (server, datname) (rate(pg_stat_database_xact_rollback{{{POSTGRES}}}[{RATE}]))",
                            "{{server}} {{datname}} rollbacks",
                        ),
                    ),
                    unit="ops",
                    description=_EXPORTER_NOTE.format(job=CONFIG.jobs.postgres),
                    requires_job=CONFIG.jobs.postgres,
                ),
                Panel(
                    "Redis commands per second",
                    "timeseries",
                    (Query(f"sum(rate(redis_commands_processed_total{{{REDIS}}}[{RATE}]))", "commands"),),
                    unit="ops",
                    description=_EXPORTER_NOTE.format(job=CONFIG.jobs.redis),
                    requires_job=CONFIG.jobs.redis,
                ),
                Panel(
                    "Redis memory and clients",
                    "timeseries",
                    (
                        Query(f"redis_memory_used_bytes{{{REDIS}}}", "memory"),
                        Query(f"redis_connected_clients{{{REDIS}}}", "clients"),
                    ),
                    description=_EXPORTER_NOTE.format(job=CONFIG.jobs.redis),
                    requires_job=CONFIG.jobs.redis,
                ),
            ),
        ),
    ),
)

# --- Background jobs -----------------------------------------------------------------------------------
_JOBS = f"rate({M.jobs}{{{WORKER}}}[{RATE}])"

BACKGROUND_JOBS = Dashboard(
    uid="chowist-background-jobs",
    title="Chowist / Background jobs",
    version=1,
    description="Is the consumer keeping up? Lag from enqueue to start, what is waiting, and what finished how.",
    rows=(
        Row(
            "Freshness",
            (
                Panel(
                    "Job lag p50 / p95 / p99 (enqueue to start)",
                    "timeseries",
                    _quantiles(M.job_lag, WORKER),
                    unit="s",
                    description=f"The freshness SLO counts tasks started within {CONFIG.slos.freshness.threshold_s:g} s of enqueue.",
                ),
                Panel(
                    "Job lag p95 by task",
                    "timeseries",
                    (Query(_quantile(0.95, M.job_lag, WORKER, by="task"), "{{task}}"),),
                    unit="s",
                ),
            ),
        ),
        Row(
            "Backlog",
            (
                Panel(
                    "Queue depth",
                    "timeseries",
                    (Query(f"max({M.queue_depth}{{{WORKER}}})", "tasks waiting"),),
                ),
                Panel(
                    "Oldest pending age",
                    "timeseries",
                    (
                        Query(f"max({M.queue_oldest_pending_age}{{{WORKER}}})", "queue"),
                        Query(f"max({M.inbox_oldest_pending_age}{{{WORKER}}})", "interactions inbox"),
                    ),
                    unit="s",
                ),
                Panel(
                    "Interactions inbox backlog",
                    "timeseries",
                    (Query(f"max({M.inbox_backlog}{{{WORKER}}})", "accepted, not yet counted"),),
                ),
                Panel(
                    "Interactions accepted vs recorded",
                    "timeseries",
                    (
                        Query(
                            f"sum by (mode) (rate({M.interactions_accepted}{{{APP}}}[{RATE}]))",
                            "accepted ({{mode}})",
                        ),
                        Query(
                            f"sum(rate({M.interactions_recorded}{{{WORKER}}}[{RATE}]))",
                            "recorded",
                        ),
                    ),
                    unit="ops",
                    description="Accepted above recorded for long means the inbox is growing.",
                ),
            ),
        ),
        Row(
            "Throughput and outcomes",
            (
                Panel(
                    "Jobs finished by task",
                    "timeseries",
                    (Query(f"sum by (task) ({_JOBS})", "{{task}}"),),
                    unit="ops",
                ),
                Panel(
                    "Job outcomes",
                    "timeseries",
                    (Query(f"sum by (outcome) ({_JOBS})", "{{outcome}}"),),
                    unit="ops",
                ),
                Panel(
                    "Job duration p95 by task",
                    "timeseries",
                    (Query(_quantile(0.95, M.job_duration, WORKER, by="task"), "{{task}}"),),
                    unit="s",
                ),
            ),
        ),
    ),
)


# --- SLOs ----------------------------------------------------------------------------------------------
def _burn_rate(slo: str, window: str) -> str:
    sel = f'{SLO_SELECTOR}, slo="{slo}"'
    # window_set is matched too, so a Prometheus holding both window sets never mixes them.
    return f"slo:sli_error:ratio_rate{window}{{{sel}}} / on (service, slo, window_set) slo:error_budget:ratio{{{sel}}}"


_FIRING = 'ALERTS{alertstate="firing"}'


def _firing_count(severity: str) -> str:
    return f'count(ALERTS{{alertstate="firing", severity="{severity}"}}) or vector(0)'


SLOS_DASHBOARD = Dashboard(
    uid="chowist-slos",
    title="Chowist / SLOs",
    version=2,
    description="Are we within our objectives, how fast is each burning its error budget, and what is paging?",
    rows=(
        Row(
            "Service level indicators",
            (
                Panel(
                    "SLI (5m) by SLO",
                    "timeseries",
                    (Query(f"1 - slo:sli_error:ratio_rate5m{{{SLO_SELECTOR}}}", "{{slo}} {{window_set}}"),),
                    unit="percentunit",
                    description="Good events / all events over the last 5 minutes.",
                ),
                Panel(
                    "Objective by SLO",
                    "stat",
                    (Query(f"slo:objective:ratio{{{SLO_SELECTOR}}}", "{{slo}} {{window_set}}", instant=True),),
                    unit="percentunit",
                    width=6,
                ),
                Panel(
                    f"Error budget remaining ({_PERIOD_DAYS}-day period)",
                    "stat",
                    (
                        Query(
                            f"slo:period_error_budget_remaining:ratio{{{SLO_SELECTOR}}}",
                            "{{slo}} {{window_set}}",
                            instant=True,
                        ),
                    ),
                    unit="percentunit",
                    width=6,
                    description="Negative means the period's budget is spent.",
                ),
                Panel(
                    "SLI measured at the front door",
                    "stat",
                    (Query(f"slo:sli_source_edge:bool{{{SLO_SELECTOR}}}", "{{slo}} {{window_set}}", instant=True),),
                    unit="none",
                    width=6,
                    description="1: the availability and latency SLIs read nginx's own numbers (mtail, job edge), "
                    "queueing in front of the app included. 0: the edge is not up, they fall back to the app's "
                    "series, which cannot see queueing.",
                ),
                Panel(
                    "Current burn rate (5m) by SLO",
                    "timeseries",
                    (Query(f"slo:current_burn_rate:ratio{{{SLO_SELECTOR}}}", "{{slo}} {{window_set}}"),),
                    description=(
                        "1 spends exactly the budget over the period; the page alerts fire at "
                        f"{' and '.join(f'{factor:g}' for factor in CONFIG.page_factors)}."
                    ),
                ),
                Panel(
                    "Error budget remaining over time",
                    "timeseries",
                    (Query(f"slo:period_error_budget_remaining:ratio{{{SLO_SELECTOR}}}", "{{slo}} {{window_set}}"),),
                    unit="percentunit",
                ),
            ),
        ),
        Row(
            "Burn rate per window",
            tuple(
                Panel(
                    f"Burn rate by window: {slo}",
                    "timeseries",
                    tuple(Query(_burn_rate(slo, window), window) for window in CONFIG.windows.names),
                    width=8,
                    description=(
                        "Error ratio over each window / error budget. Pages need a long and a short window both above"
                        ' the factor. Series with window_set="lab" use the lab windows: each is'
                        f" 1/{CONFIG.windows.lab_scale} of its name."
                    ),
                )
                for slo in (s.name for s in CONFIG.slos)
            ),
        ),
        Row(
            "Alerts",
            (
                Panel(
                    "Alerts firing by severity",
                    "stat",
                    (
                        Query(_firing_count("page"), "page", instant=True),
                        Query(_firing_count("ticket"), "ticket", instant=True),
                    ),
                    unit="none",
                    width=6,
                ),
                Panel(
                    "Firing alerts",
                    "timeseries",
                    (
                        # The fallback series says "none" explicitly, so an empty panel never hides a broken query.
                        Query(
                            f"sum by (alertname, severity) ({_FIRING})"
                            ' or on () label_replace(vector(0), "alertname", "none firing", "", "")',
                            "{{alertname}} {{severity}}",
                        ),
                    ),
                    unit="none",
                    width=18,
                    description="Runbooks: slo/runbooks/<alertname>.md.",
                ),
            ),
        ),
    ),
)

# --- Logs ----------------------------------------------------------------------------------------------
LOGS = Dashboard(
    uid="chowist-logs",
    title="Chowist / Logs",
    version=1,
    description="What is failing, in words: error events by name and the latest error lines, linked to their traces.",
    rows=(
        Row(
            "Rates",
            (
                Panel(
                    logql.ERROR_RATE_BY_EVENT.title,
                    "timeseries",
                    (Query(logql.ERROR_RATE_BY_EVENT.expr, "{{service}} {{event}}"),),
                    datasource="loki",
                ),
                Panel(
                    logql.LOG_VOLUME_BY_LEVEL.title,
                    "timeseries",
                    (Query(logql.LOG_VOLUME_BY_LEVEL.expr, "{{service}} {{level}}"),),
                    datasource="loki",
                ),
            ),
        ),
        Row(
            "Lines",
            tuple(
                Panel(q.title, "logs", (Query(q.expr),), datasource="loki", width=24, height=10)
                for q in (logql.RECENT_ERRORS, logql.SLOW_REQUESTS, logql.FAULT_CHANGES)
            ),
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (SERVICE_OVERVIEW, DATABASE_AND_CACHE, BACKGROUND_JOBS, SLOS_DASHBOARD, LOGS)


class PromQuery(NamedTuple):
    dashboard: str
    panel: str
    expr: str
    legend: str
    requires_job: str | None


def promql_queries() -> list[PromQuery]:
    """Every PromQL expression on every dashboard, in dashboard order, with Grafana variables left in."""
    return [
        PromQuery(dashboard.title, panel.title, query.expr, query.legend, panel.requires_job)
        for dashboard in DASHBOARDS
        for panel in dashboard.panels
        if panel.datasource == "prometheus"
        for query in panel.queries
    ]


def render_promql(expr: str, *, rate_interval: str = "1m") -> str:
    """The expression Prometheus itself accepts: Grafana's interval variables replaced by `rate_interval`."""
    for variable in ("$__rate_interval", "$__interval", "$__range", "$__auto"):
        expr = expr.replace(variable, rate_interval)
    return expr
