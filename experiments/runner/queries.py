"""The PromQL the runner's measurement reads: counters at the window's edges, job lag, burn rates.

Metric names and selectors are monitoring.config's; the report's plots use the dashboards' own PromQL
(grafana.panels, see plots.py), so a report and a dashboard never disagree.
"""

from __future__ import annotations

from monitoring.config import CONFIG, le_matcher
from slo.spec import SloSpec, slo_spec_list

M = CONFIG.metrics
USER_VIEWS = CONFIG.user_facing_selector
# The jobs whose next scrape brackets a measurement window.
SCRAPED_JOBS = CONFIG.jobs.chowist

# Only series present in the latest scrapes. An instant selector already drops a series whose process
# stopped exporting it (staleness marker), but after a lab restart Prometheus (which keeps its storage)
# wrote no marker and would show the previous processes' last values for five minutes.
FRESH_S = 15


def fresh_sum(selector: str) -> str:
    return f"sum({selector} and (time() - timestamp({selector})) < {FRESH_S})"


# Counters summed over every series: read at the two edges of a window, their difference is exact.
REQUESTS = fresh_sum(f"{M.http_requests}{{{USER_VIEWS}}}")
REQUESTS_5XX = fresh_sum(f"{M.http_requests}{{{USER_VIEWS},{CONFIG.server_error_selector}}}")
INTERACTIONS_ACCEPTED = fresh_sum(M.interactions_accepted)
# Sync mode counts in the app and queued mode in the consumer: summed over both jobs.
INTERACTIONS_RECORDED = fresh_sum(M.interactions_recorded)
JOBS_PROCESSED = fresh_sum(f'{M.jobs}{{outcome="success"}}')
# nginx's responses (mtail over its access log, health probes left out) when the proxy runs: it does not restart
# with the app instances, and it sees the 502s it answered itself.
EDGE_RESPONSES = fresh_sum(f"{M.edge_responses}{{{CONFIG.edge_selector}}}")
EDGE_RESPONSES_5XX = fresh_sum(f"{M.edge_responses}{{{CONFIG.edge_selector},{CONFIG.server_error_selector}}}")
# The latency SLI's good and total events at each source, read at the window's edges like the request counts: the
# edge's (nginx's $request_time through mtail, probes left out) and the app's (user-facing views).
_THRESHOLD = CONFIG.slos.latency.threshold_s
assert _THRESHOLD is not None
EDGE_LATENCY_TOTAL = fresh_sum(f"{M.edge_request_duration}_count{{{CONFIG.edge_selector}}}")
EDGE_LATENCY_GOOD = fresh_sum(f"{M.edge_request_duration}_bucket{{{CONFIG.edge_selector},{le_matcher(_THRESHOLD)}}}")
APP_LATENCY_TOTAL = fresh_sum(f"{M.http_request_duration}_count{{{CONFIG.app_selector},{USER_VIEWS}}}")
APP_LATENCY_GOOD = fresh_sum(
    f"{M.http_request_duration}_bucket{{{CONFIG.app_selector},{USER_VIEWS},{le_matcher(_THRESHOLD)}}}"
)
INBOX_BACKLOG = fresh_sum(M.inbox_backlog)
QUEUE_DEPTH = fresh_sum(M.queue_depth)


def job_lag_quantile(q: float, window_s: int) -> str:
    return f"histogram_quantile({q}, sum by (le) (increase({M.job_lag}_bucket[{window_s}s])))"


def job_lag_max(window_s: int) -> str:
    # The histogram can't give a maximum; the oldest pending age is sampled at every scrape.
    return (
        f"max(max_over_time({M.queue_oldest_pending_age}[{window_s}s]) "
        f"or max_over_time({M.inbox_oldest_pending_age}[{window_s}s]))"
    )


# Where a request's time went, over a run's window: at the edge (what clients waited, queueing included), in the
# app (Django's middleware and view) and waiting in front of Django (X-Request-Start to Django's first middleware).
LATENCY_SOURCES = {
    "edge": (M.edge_request_duration, CONFIG.edge_selector),
    "app": (M.http_request_duration, f"{CONFIG.app_selector},{USER_VIEWS}"),
    "queue": (M.request_queue_duration, CONFIG.app_selector),
}


def latency_quantile(source: str, q: float, window_s: int) -> str:
    metric, selector = LATENCY_SOURCES[source]
    return f"histogram_quantile({q}, sum by (le) (increase({metric}_bucket{{{selector}}}[{window_s}s])))"


def latency_mean(source: str, window_s: int) -> str:
    metric, selector = LATENCY_SOURCES[source]
    return f"sum(increase({metric}_sum{{{selector}}}[{window_s}s])) / sum(increase({metric}_count{{{selector}}}[{window_s}s]))"


def burn_rate_max(slo: str, window_s: int) -> str:
    return f'max(max_over_time(slo:current_burn_rate:ratio{{slo="{slo}"}}[{window_s}s]))'


ALERTS_FIRING = 'ALERTS{alertstate="firing"}'


def slo_sli_queries(window_s: int) -> list[tuple[SloSpec, str, str]]:
    """Per SLO: its spec, and its own SLI queries (total, errors) over the last `window_s` seconds."""
    window = f"{window_s}s"
    return [
        (spec, f"({spec.total_query_for(window)})", f"({spec.error_query_for(window)})") for spec in slo_spec_list()
    ]


# Where a run's database work went (read replica experiments; the same series as the Database & cache dashboard).
APP = CONFIG.app_selector


def db_queries_by_alias(window_s: int) -> str:
    """Queries the app ran per Django database alias (default = the primary, replica) over the window."""
    return f"sum by (alias) (increase({M.db_queries}{{{APP}}}[{window_s}s]))"


def db_reads_by_database(window_s: int) -> str:
    """The router's decisions for reads inside requests: primary or replica (chowist/core/db_routing.py)."""
    return f"sum by (database) (increase({M.db_read_routes}{{{APP}}}[{window_s}s]))"


def db_commits_by_server(window_s: int, datname: str) -> str:
    """Transactions committed in the lab's database per PostgreSQL server (prometheus-postgres-exporter: primary,
    replica); other databases of a shared server are left out."""
    selector = f'job="{CONFIG.jobs.postgres}", datname="{datname}"'
    return f"sum by (server) (increase(pg_stat_database_xact_commit{{{selector}}}[{window_s}s]))"


def replica_lag_max(window_s: int) -> str:
    return f'max(max_over_time({M.replica_lag}{{job="{CONFIG.jobs.postgres}"}}[{window_s}s]))'


def jobs_by_task_outcome(window_s: int) -> str:
    """Task executions over the window per task and outcome (success, error, retry)."""
    return f"sum by (task, outcome) (increase({M.jobs}[{window_s}s]))"


def job_lag_quantile_by_task(q: float, window_s: int) -> str:
    return f"histogram_quantile({q}, sum by (task, le) (increase({M.job_lag}_bucket[{window_s}s])))"
