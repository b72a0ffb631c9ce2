"""Every dashboard, row and panel as data, built from a monitoring config: the one declarative source the
generator (grafana.build, through the pack command) renders for the lab and for any django-prometheus app.

`dashboards(config)` is the generic pack (Service overview, Database & cache where the app uses
django-prometheus's DB/cache backends, SLOs) plus, with the Chowist layer, the lab's panels and dashboards
(build and faults, the read replica, the exporters, Background jobs, Logs). Every query of the generic pack
reads what django-prometheus exports or the pack's own rules record.

Queries name the app's job and the SLO service through dashboard variables ($job, $service, $window_set), and
panels their datasource through $datasource / $loki, so a dashboard imports into any Grafana.
The experiments report imports `promql_queries()` to plot exactly the PromQL the dashboards show, after
`render_promql()` replaces Grafana's variables. Metric names and labels follow observability/METRICS.md.
Each dashboard's `version` is the number the experiment report quotes; bump it when its panels change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from loki import queries as logql
from monitoring.config import CHOWIST_LAYER, CONFIG, LAB, MonitoringConfig

PanelKind = Literal["timeseries", "stat", "table", "logs"]
Datasource = Literal["prometheus", "loki"]
VariableKind = Literal["datasource", "query", "custom"]

# Grafana picks the rate window; $__rate_interval is at least four scrape intervals, so rate() always has samples.
RATE = "$__rate_interval"
QUANTILES = (0.5, 0.95, 0.99)

# Dashboard variables. window_set's values are regexes: production series carry no window_set label, which
# only the empty match "()" selects.
JOB_VAR = "job"
SERVICE_VAR = "service"
WINDOW_SET_VAR = "window_set"
WINDOW_SET_OPTIONS = (("production", "()"), (LAB, LAB), ("both", ".*"))
APP_JOB = f'job="${JOB_VAR}"'
# process-exporter's groups for the app instances (the lab names them app, app-2, ...).
APP_GROUPS = "app(-[0-9]+)?"


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
class Variable:
    """A dashboard variable: a datasource picker, a label's values, or fixed options (label -> value)."""

    name: str
    kind: VariableKind
    label: str
    # The datasource plugin for "datasource"; the PromQL label_values() query for "query".
    query: str = ""
    options: tuple[tuple[str, str], ...] = ()
    # Selected on import; what render_promql substitutes. None for datasource pickers (Grafana's default).
    default: str | None = None


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    version: int
    description: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = field(default=("chowist",))
    variables: tuple[Variable, ...] = ()

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


def _title(config: MonitoringConfig, name: str) -> str:
    """'<Service> / <name>': the dashboards of one service sort together."""
    return f"{config.service[:1].upper()}{config.service[1:]} / {name}"


def _uid(config: MonitoringConfig, name: str) -> str:
    return f"{config.service}-{name}"


def _datasource_variable() -> Variable:
    return Variable("datasource", "datasource", "Prometheus", query="prometheus")


def _job_variable(config: MonitoringConfig) -> Variable:
    # django-prometheus's outermost counter exists from the app's start, before any request.
    metric = config.metrics.http_requests_before_middlewares
    return Variable(JOB_VAR, "query", "Job", query=f"label_values({metric}, job)", default=config.jobs.app)


def _served_jobs(config: MonitoringConfig) -> str:
    """The app's job ($job) and the other jobs that serve users (the lab's consumer): CPU, memory, targets up."""
    others = "".join(f"|{job}" for job in config.paged_jobs if job != config.jobs.app)
    return f'job=~"${JOB_VAR}{others}"'


def _front_door_panels(config: MonitoringConfig) -> tuple[Panel, ...]:
    """The lab's front door: nginx's time per request beside the app's, and the queueing between them. A generic
    pack has no proxy reporting its times, so no such panel (every query of the generic pack returns data)."""
    if not config.has_layer(CHOWIST_LAYER):
        return ()
    m = config.metrics
    return (
        Panel(
            "Latency p95: at the front door, in the app, queueing in front of the app",
            "timeseries",
            (
                Query(_quantile(0.95, m.edge_request_duration, config.edge_selector), "edge (what clients wait)"),
                Query(
                    _quantile(0.95, m.http_request_duration, f"{APP_JOB}, {config.user_facing_selector}"),
                    "app (Django)",
                ),
                Query(_quantile(0.95, m.request_queue_duration, APP_JOB), "queueing before Django"),
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
    )


def _cpu_queries(config: MonitoringConfig, served: str) -> tuple[Query, ...]:
    """CPU by job. The lab shows every process, the app first: its job's counter is the gunicorn master's and its
    workers' together (observability.exposition.ProcessTreeCollector), wherever the app runs; then every other lab
    process by component (prometheus-process-exporter; the app's own groups are left out, the line above has them).
    """
    if not config.has_layer(CHOWIST_LAYER):
        return (Query(f"sum by (job) (rate(process_cpu_seconds_total{{{served}}}[{RATE}]))", "{{job}}"),)
    return (
        Query(f"sum(rate(process_cpu_seconds_total{{{APP_JOB}}}[{RATE}]))", f"{config.jobs.app} (workers)"),
        Query(
            f"sum by (groupname) (rate({config.metrics.process_group_cpu}"
            f'{{job="{config.jobs.processes}",groupname!~"{APP_GROUPS}"}}[{RATE}]))',
            "{{groupname}}",
        ),
    )


# --- Service overview ----------------------------------------------------------------------------------
def service_overview(config: MonitoringConfig) -> Dashboard:
    m = config.metrics
    requests = f"rate({m.http_requests}{{{APP_JOB}}}[{RATE}])"
    requests_5xx = f"rate({m.http_requests}{{{APP_JOB}, {config.server_error_selector}}}[{RATE}])"
    served = _served_jobs(config)
    rows = [
        Row(
            "Traffic and errors",
            (
                Panel(
                    "Request rate by view",
                    "timeseries",
                    (Query(f"sum by (view) ({requests})", "{{view}}"),),
                    unit="reqps",
                ),
                Panel(
                    "Responses by status",
                    "timeseries",
                    (Query(f"sum by (status) ({requests})", "{{status}}"),),
                    unit="reqps",
                ),
                Panel(
                    "5xx ratio by view",
                    "timeseries",
                    (Query(_ratio_or_zero(requests_5xx, requests, "view"), "{{view}}"),),
                    unit="percentunit",
                    description="Share of each view's responses that were 5xx; the availability SLO counts user-facing views.",
                ),
                Panel(
                    "Total request rate and 5xx rate",
                    "timeseries",
                    (
                        Query(f"sum({requests})", "all"),
                        Query(f"sum({requests_5xx}) or 0 * sum({requests})", "5xx"),
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
                    _quantiles(m.http_request_duration, f"{APP_JOB}, {config.user_facing_selector}"),
                    unit="s",
                    description=f"The latency SLO counts requests under {config.latency_threshold_ms:g} ms.",
                ),
                Panel(
                    "Latency p95 by view",
                    "timeseries",
                    (Query(_quantile(0.95, m.http_request_duration, APP_JOB, by="view"), "{{view}}"),),
                    unit="s",
                    description="Interpolated within a bucket: it reads between the two bucket edges around the "
                    "real value, so finer buckets near your views' latencies give a truer line.",
                ),
                *_front_door_panels(config),
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
                            f"sum({m.http_requests_before_middlewares}{{{APP_JOB}}})"
                            f" - sum({m.http_responses_before_middlewares}{{{APP_JOB}}})",
                            "in progress",
                        ),
                    ),
                    description="Requests in, minus responses out (django-prometheus's outermost counters), over "
                    "all worker processes; near workers x threads means requests queue.",
                ),
                Panel(
                    "CPU by process group",
                    "timeseries",
                    _cpu_queries(config, served),
                    unit="short",
                    description="CPU cores used (1 = one full core)"
                    + (
                        "; this machine has 2): the app's gunicorn master and workers first, then each other process "
                        "of the native lab by component (nginx with its workers, mtail, the consumer, Prometheus, "
                        "Alertmanager, the webhook, exporters), as prometheus-process-exporter reads /proc: the same "
                        "process trees the experiment report samples."
                        if config.has_layer(CHOWIST_LAYER)
                        else "."
                    ),
                ),
                Panel(
                    "Resident memory by process group",
                    "timeseries",
                    (Query(f"sum by (job) (process_resident_memory_bytes{{{served}}})", "{{job}}"),),
                    unit="bytes",
                ),
                Panel(
                    "Scrape targets up",
                    "stat",
                    (Query(f"up{{{served}}}", "{{job}} {{instance}}", instant=True),),
                    unit="none",
                    description="1 when Prometheus could scrape the target on its last attempt.",
                ),
            ),
        ),
    ]
    if config.has_layer(CHOWIST_LAYER):
        rows.append(
            Row(
                "Build and faults",
                (
                    Panel(
                        "Build info",
                        "table",
                        (Query(f"max by (version, git_sha) ({m.build_info}{{{APP_JOB}}})", instant=True),),
                        unit="none",
                    ),
                    Panel(
                        "Fault flags active",
                        "timeseries",
                        (Query(f"max by (fault) ({m.fault_active})", "{{fault}}"),),
                        unit="none",
                        description="1 while an injected fault (manage.py fault set …) is on: read other panels with this in mind.",
                    ),
                ),
            )
        )
    return Dashboard(
        uid=_uid(config, "service-overview"),
        title=_title(config, "Service overview"),
        version=4,
        description="RED per view, saturation and build: is the app healthy, and which view is not?",
        rows=tuple(rows),
        tags=(config.service,),
        variables=(_datasource_variable(), _job_variable(config)),
    )


# --- Database & cache ----------------------------------------------------------------------------------
_EXPORTER_NOTE = "Needs the {job} exporter, which only the compose stack runs (the native lab has no data here)."


def _database_row(config: MonitoringConfig) -> Row:
    m = config.metrics
    queries = f"rate({m.db_queries}{{{APP_JOB}}}[{RATE}])"
    requests = f"rate({m.http_requests}{{{APP_JOB}}}[{RATE}])"
    return Row(
        "Database",
        (
            Panel(
                "Queries per request",
                "timeseries",
                (Query(f"sum({queries}) / sum({requests})", "queries per request"),),
                description="Statements executed (django-prometheus's database backends) per response, over all "
                "views: a jump here with flat traffic is an N+1 query.",
            ),
            Panel(
                "Queries per second by database",
                "timeseries",
                (Query(f"sum by (alias, vendor) ({queries})", "{{alias}} ({{vendor}})"),),
                unit="ops",
            ),
            Panel(
                "Query duration p95 by database",
                "timeseries",
                (Query(_quantile(0.95, m.db_query_duration, APP_JOB, by="alias"), "{{alias}}"),),
                unit="s",
            ),
            Panel(
                "Share of request time spent in the database",
                "timeseries",
                (
                    Query(
                        f"sum(rate({m.db_query_duration}_sum{{{APP_JOB}}}[{RATE}]))"
                        f" / sum(rate({m.http_request_duration}_sum{{{APP_JOB}}}[{RATE}]))",
                        "database",
                    ),
                ),
                unit="percentunit",
            ),
        ),
    )


def _cache_row(config: MonitoringConfig) -> Row:
    m = config.metrics
    gets = f"rate({m.cache_gets}{{{APP_JOB}}}[{RATE}])"
    hits = f"rate({m.cache_hits}{{{APP_JOB}}}[{RATE}])"
    misses = f"rate({m.cache_misses}{{{APP_JOB}}}[{RATE}])"
    return Row(
        "Cache",
        (
            Panel(
                "Cache hit ratio by backend",
                "timeseries",
                (Query(_ratio_or_zero(hits, gets, "backend"), "{{backend}}"),),
                unit="percentunit",
            ),
            Panel(
                "Cache reads by backend: hits and misses",
                "timeseries",
                (
                    Query(f"sum by (backend) ({hits})", "{{backend}} hit"),
                    Query(f"sum by (backend) ({misses})", "{{backend}} miss"),
                ),
                unit="reqps",
            ),
        ),
    )


def _replica_and_exporter_rows(config: MonitoringConfig) -> tuple[Row, ...]:
    m = config.metrics
    postgres = f'job="{config.jobs.postgres}"'
    redis = f'job="{config.jobs.redis}"'
    return (
        Row(
            "Read replica",
            (
                Panel(
                    "Reads by database",
                    "timeseries",
                    (
                        Query(
                            f"sum by (database) (rate({m.db_read_routes}{{{APP_JOB}}}[{RATE}])) or on() vector(0)",
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
                            f"sum by (reason) (increase({m.db_replica_fallbacks}{{{APP_JOB}}}[{RATE}])) or on() vector(0)",
                            "{{reason}}",
                        ),
                    ),
                    description="Times the app found the replica unusable and read from the primary instead (log: replica_unavailable).",
                ),
                Panel(
                    "Replication lag",
                    "timeseries",
                    (Query(f"max by (server) ({m.replica_lag}{{{postgres}}})", "{{server}}"),),
                    unit="s",
                    description=(
                        f"Seconds the replica's data is behind (0 on the primary). Above "
                        f"{config.replica_lag_threshold_s:g} s, ChowistReplicaLagging opens a ticket. "
                        + _EXPORTER_NOTE.format(job=config.jobs.postgres)
                    ),
                    requires_job=config.jobs.postgres,
                ),
            ),
        ),
        Row(
            "PostgreSQL and Redis exporters (compose stack)",
            (
                Panel(
                    "PostgreSQL backends by database",
                    "timeseries",
                    (Query(f"sum by (datname) (pg_stat_database_numbackends{{{postgres}}})", "{{datname}}"),),
                    description=_EXPORTER_NOTE.format(job=config.jobs.postgres),
                    requires_job=config.jobs.postgres,
                ),
                Panel(
                    "PostgreSQL transactions per second",
                    "timeseries",
                    (
                        Query(
                            f"sum by (server, datname) (rate(pg_stat_database_xact_commit{{{postgres}}}[{RATE}]))",
                            "{{server}} {{datname}} commits",
                        ),
                        Query(
                            f"sum by (server, datname) (rate(pg_stat_database_xact_rollback{{{postgres}}}[{RATE}]))",
                            "{{server}} {{datname}} rollbacks",
                        ),
                    ),
                    unit="ops",
                    description=_EXPORTER_NOTE.format(job=config.jobs.postgres),
                    requires_job=config.jobs.postgres,
                ),
                Panel(
                    "Redis commands per second",
                    "timeseries",
                    (Query(f"sum(rate(redis_commands_processed_total{{{redis}}}[{RATE}]))", "commands"),),
                    unit="ops",
                    description=_EXPORTER_NOTE.format(job=config.jobs.redis),
                    requires_job=config.jobs.redis,
                ),
                Panel(
                    "Redis memory and clients",
                    "timeseries",
                    (
                        Query(f"redis_memory_used_bytes{{{redis}}}", "memory"),
                        Query(f"redis_connected_clients{{{redis}}}", "clients"),
                    ),
                    description=_EXPORTER_NOTE.format(job=config.jobs.redis),
                    requires_job=config.jobs.redis,
                ),
            ),
        ),
    )


def database_and_cache(config: MonitoringConfig) -> Dashboard | None:
    """The Database & cache dashboard, with the rows of the backends the app wires; None without any."""
    rows: list[Row] = []
    if config.database_metrics:
        rows.append(_database_row(config))
    if config.cache_metrics:
        rows.append(_cache_row(config))
    if config.has_layer(CHOWIST_LAYER):
        rows += _replica_and_exporter_rows(config)
    if not rows:
        return None
    return Dashboard(
        uid=_uid(config, "database-cache"),
        title=_title(config, "Database & cache"),
        version=4,
        description="Where request time goes: queries per request, query time, and how often caches hit.",
        rows=tuple(rows),
        tags=(config.service,),
        variables=(_datasource_variable(), _job_variable(config)),
    )


# --- Background jobs (the Chowist layer) ---------------------------------------------------------------
def background_jobs(config: MonitoringConfig) -> Dashboard:
    m = config.metrics
    worker = config.worker_selector
    jobs = f"rate({m.jobs}{{{worker}}}[{RATE}])"
    freshness = config.slos.freshness.threshold_s
    assert freshness is not None
    return Dashboard(
        uid=_uid(config, "background-jobs"),
        title=_title(config, "Background jobs"),
        version=2,
        description="Is the consumer keeping up? Lag from enqueue to start, what is waiting, and what finished how.",
        tags=(config.service,),
        variables=(_datasource_variable(), _job_variable(config)),
        rows=(
            Row(
                "Freshness",
                (
                    Panel(
                        "Job lag p50 / p95 / p99 (enqueue to start)",
                        "timeseries",
                        _quantiles(m.job_lag, worker),
                        unit="s",
                        description=f"The freshness SLO counts tasks started within {freshness:g} s of enqueue.",
                    ),
                    Panel(
                        "Job lag p95 by task",
                        "timeseries",
                        (Query(_quantile(0.95, m.job_lag, worker, by="task"), "{{task}}"),),
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
                        (Query(f"max({m.queue_depth}{{{worker}}})", "tasks waiting"),),
                    ),
                    Panel(
                        "Oldest pending age",
                        "timeseries",
                        (
                            Query(f"max({m.queue_oldest_pending_age}{{{worker}}})", "queue"),
                            Query(f"max({m.inbox_oldest_pending_age}{{{worker}}})", "interactions inbox"),
                        ),
                        unit="s",
                    ),
                    Panel(
                        "Interactions inbox backlog",
                        "timeseries",
                        (Query(f"max({m.inbox_backlog}{{{worker}}})", "accepted, not yet counted"),),
                    ),
                    Panel(
                        "Interactions accepted vs recorded",
                        "timeseries",
                        (
                            Query(
                                f"sum by (mode) (rate({m.interactions_accepted}{{{APP_JOB}}}[{RATE}]))",
                                "accepted ({{mode}})",
                            ),
                            Query(
                                f"sum(rate({m.interactions_recorded}{{{worker}}}[{RATE}]))",
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
                        (Query(f"sum by (task) ({jobs})", "{{task}}"),),
                        unit="ops",
                    ),
                    Panel(
                        "Job outcomes",
                        "timeseries",
                        (Query(f"sum by (outcome) ({jobs})", "{{outcome}}"),),
                        unit="ops",
                    ),
                    Panel(
                        "Job duration p95 by task",
                        "timeseries",
                        (Query(_quantile(0.95, m.job_duration, worker, by="task"), "{{task}}"),),
                        unit="s",
                    ),
                ),
            ),
        ),
    )


# --- SLOs ----------------------------------------------------------------------------------------------
# The pack's own recording rules, for the service and window set the variables pick.
SLO_SELECTOR = f'service="${SERVICE_VAR}", window_set=~"${WINDOW_SET_VAR}"'


def _burn_rate(slo: str, window: str) -> str:
    sel = f'{SLO_SELECTOR}, slo="{slo}"'
    # window_set is matched too, so a Prometheus holding both window sets never mixes them.
    return f"slo:sli_error:ratio_rate{window}{{{sel}}} / on (service, slo, window_set) slo:error_budget:ratio{{{sel}}}"


_FIRING = f'ALERTS{{alertstate="firing", service="${SERVICE_VAR}"}}'


def _firing_count(severity: str) -> str:
    return f'count(ALERTS{{alertstate="firing", service="${SERVICE_VAR}", severity="{severity}"}}) or vector(0)'


def _front_door_source_panels(config: MonitoringConfig) -> tuple[Panel, ...]:
    """Whether the lab's SLIs read nginx's numbers or fell back to the app's (no proxy in a generic pack)."""
    if not config.has_layer(CHOWIST_LAYER):
        return ()
    return (
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
    )


def slos_dashboard(config: MonitoringConfig, *, default_window_set: str) -> Dashboard:
    period_days = config.windows.period.removesuffix("d")
    window_sets = tuple(
        option for option in WINDOW_SET_OPTIONS if option[0] == "both" or option[0] in config.window_sets
    )
    return Dashboard(
        uid=_uid(config, "slos"),
        title=_title(config, "SLOs"),
        version=3,
        description="Are we within our objectives, how fast is each burning its error budget, and what is paging?",
        tags=(config.service,),
        variables=(
            _datasource_variable(),
            Variable(
                SERVICE_VAR,
                "query",
                "Service",
                query="label_values(slo:objective:ratio, service)",
                default=config.service,
            ),
            # Production and lab series side by side would read as one SLO twice: one set at a time.
            Variable(
                WINDOW_SET_VAR,
                "custom",
                "Window set",
                options=window_sets,
                default=dict(WINDOW_SET_OPTIONS)[default_window_set],
            ),
        ),
        rows=(
            Row(
                "Service level indicators",
                (
                    Panel(
                        "SLI (5m) by SLO",
                        "timeseries",
                        (Query(f"1 - slo:sli_error:ratio_rate5m{{{SLO_SELECTOR}}}", "{{slo}} {{window_set}}"),),
                        unit="percentunit",
                        description="Good events / all events over the last 5 minutes. No line for an SLO means "
                        "its SLI cannot be measured: see the SLOConfig* alerts.",
                    ),
                    Panel(
                        "Objective by SLO",
                        "stat",
                        (Query(f"slo:objective:ratio{{{SLO_SELECTOR}}}", "{{slo}} {{window_set}}", instant=True),),
                        unit="percentunit",
                        width=6,
                    ),
                    Panel(
                        f"Error budget remaining ({period_days}-day period)",
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
                    *_front_door_source_panels(config),
                    Panel(
                        "Current burn rate (5m) by SLO",
                        "timeseries",
                        (Query(f"slo:current_burn_rate:ratio{{{SLO_SELECTOR}}}", "{{slo}} {{window_set}}"),),
                        description=(
                            "1 spends exactly the budget over the period; the page alerts fire at "
                            f"{' and '.join(f'{factor:g}' for factor in config.page_factors)}."
                        ),
                    ),
                    Panel(
                        "Error budget remaining over time",
                        "timeseries",
                        (
                            Query(
                                f"slo:period_error_budget_remaining:ratio{{{SLO_SELECTOR}}}", "{{slo}} {{window_set}}"
                            ),
                        ),
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
                        tuple(Query(_burn_rate(slo, window), window) for window in config.windows.names),
                        width=8,
                        description=(
                            "Error ratio over each window / error budget. Pages need a long and a short window both above"
                            ' the factor. Series with window_set="lab" use the lab windows: each is'
                            f" 1/{config.windows.lab_scale} of its name."
                        ),
                    )
                    for slo in (s.name for s in config.enabled_slos)
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
                        description=f"Runbooks: {config.runbook_base_url}<alertname>.md.",
                    ),
                ),
            ),
        ),
    )


# --- Logs (the Chowist layer: the lab's log shipper and its labels) -------------------------------------
def logs_dashboard(config: MonitoringConfig) -> Dashboard:
    return Dashboard(
        uid=_uid(config, "logs"),
        title=_title(config, "Logs"),
        version=2,
        description="What is failing, in words: error events by name and the latest error lines, linked to their traces.",
        tags=(config.service,),
        variables=(Variable("loki", "datasource", "Loki", query="loki"),),
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


def dashboards(config: MonitoringConfig, *, default_window_set: str = "production") -> tuple[Dashboard, ...]:
    """The dashboards of `config`: the generic pack, plus the Chowist layer's when the config has it.

    `default_window_set` is the SLO dashboard's window set on import ("production", "lab" or "both").
    """
    boards = [service_overview(config), database_and_cache(config)]
    if config.has_layer(CHOWIST_LAYER):
        boards.append(background_jobs(config))
    boards.append(slos_dashboard(config, default_window_set=default_window_set))
    if config.has_layer(CHOWIST_LAYER):
        boards.append(logs_dashboard(config))
    return tuple(board for board in boards if board is not None)


# The lab's dashboards: both window sets' series exist in the compose stack, so its SLO dashboard opens on both.
DASHBOARDS: tuple[Dashboard, ...] = dashboards(CONFIG, default_window_set="both")
_BY_UID = {board.uid: board for board in DASHBOARDS}
SERVICE_OVERVIEW = _BY_UID["chowist-service-overview"]
DATABASE_AND_CACHE = _BY_UID["chowist-database-cache"]
BACKGROUND_JOBS = _BY_UID["chowist-background-jobs"]
SLOS_DASHBOARD = _BY_UID["chowist-slos"]
LOGS = _BY_UID["chowist-logs"]


class PromQuery(NamedTuple):
    dashboard: str
    panel: str
    expr: str
    legend: str
    requires_job: str | None


def promql_queries(boards: tuple[Dashboard, ...] = DASHBOARDS) -> list[PromQuery]:
    """Every PromQL expression on every dashboard, in dashboard order, with Grafana variables left in."""
    return [
        PromQuery(dashboard.title, panel.title, query.expr, query.legend, panel.requires_job)
        for dashboard in boards
        for panel in dashboard.panels
        if panel.datasource == "prometheus"
        for query in panel.queries
    ]


def variable_defaults(boards: tuple[Dashboard, ...] = DASHBOARDS) -> dict[str, str]:
    """Each dashboard variable's value on import, by name (the same name means the same value in one pack)."""
    return {var.name: var.default for board in boards for var in board.variables if var.default is not None}


def render_promql(expr: str, *, rate_interval: str = "1m", variables: Mapping[str, str] | None = None) -> str:
    """The expression Prometheus itself accepts: Grafana's interval variables replaced by `rate_interval`, the
    dashboard variables by `variables` (default: the lab dashboards' values on import)."""
    for variable in ("$__rate_interval", "$__interval", "$__range", "$__auto"):
        expr = expr.replace(variable, rate_interval)
    values = variable_defaults() if variables is None else variables
    # Longest names first, so $job never eats the start of a longer name.
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(f"${name}", values[name])
    return expr
