"""Every PromQL expression the runner uses: the measurement (counters read at the window's edges) and
the report's plots. Plots prefer the dashboards' own PromQL (grafana/) so a report and a dashboard
never disagree; the fallbacks below are the same expressions, kept for when grafana/ can't be imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.runner.config import EXCLUDED_VIEWS

APP_JOB = "chowist-app"
WORKER_JOB = "chowist-worker"
USER_VIEWS = f'view!~"{"|".join(EXCLUDED_VIEWS)}"'

# Only series present in the latest scrapes. An instant selector already drops a series whose process
# stopped exporting it (staleness marker), but after a lab restart Prometheus (which keeps its storage)
# wrote no marker and would show the previous processes' last values for five minutes.
FRESH_S = 15


def fresh_sum(selector: str) -> str:
    return f"sum({selector} and (time() - timestamp({selector})) < {FRESH_S})"


# Counters summed over every series: read at the two edges of a window, their difference is exact.
REQUESTS = fresh_sum(f"chowist_http_requests_total{{{USER_VIEWS}}}")
REQUESTS_5XX = fresh_sum(f'chowist_http_requests_total{{{USER_VIEWS},status=~"5.."}}')
INTERACTIONS_ACCEPTED = fresh_sum("chowist_interactions_accepted_total")
# Sync mode counts in the app and queued mode in the consumer: summed over both jobs.
INTERACTIONS_RECORDED = fresh_sum("chowist_interactions_recorded_total")
JOBS_PROCESSED = fresh_sum('chowist_jobs_total{outcome="success"}')
INBOX_BACKLOG = fresh_sum("chowist_inbox_backlog")
QUEUE_DEPTH = fresh_sum("chowist_queue_depth")


def job_lag_quantile(q: float, window_s: int) -> str:
    return f"histogram_quantile({q}, sum by (le) (increase(chowist_job_lag_seconds_bucket[{window_s}s])))"


def job_lag_max(window_s: int) -> str:
    # The histogram can't give a maximum; the oldest pending age is sampled at every scrape.
    return (
        f"max(max_over_time(chowist_queue_oldest_pending_age_seconds[{window_s}s]) "
        f"or max_over_time(chowist_inbox_oldest_pending_age_seconds[{window_s}s]))"
    )


def burn_rate_max(slo: str, window_s: int) -> str:
    return f'max(max_over_time(slo:current_burn_rate:ratio{{slo="{slo}"}}[{window_s}s]))'


def objective(slo: str) -> str:
    return f'max(slo:objective:ratio{{slo="{slo}"}})'


ALERTS_FIRING = 'ALERTS{alertstate="firing"}'


@dataclass(frozen=True)
class Panel:
    """One plot: a title, a unit and PromQL expressions (legend -> expr) as on the dashboard."""

    slug: str
    title: str
    unit: str
    exprs: dict[str, str]


RATE = "$__rate_interval"

FALLBACK_PANELS: tuple[Panel, ...] = (
    Panel(
        "throughput",
        "Throughput by view",
        "req/s",
        {"{{view}}": f"sum by (view) (rate(chowist_http_requests_total{{{USER_VIEWS}}}[{RATE}]))"},
    ),
    Panel(
        "latency",
        "Latency percentiles",
        "s",
        {
            f"p{int(q * 100)}": f"histogram_quantile({q}, sum by (le) (rate(chowist_http_request_duration_seconds_bucket{{{USER_VIEWS}}}[{RATE}])))"
            for q in (0.5, 0.95, 0.99)
        },
    ),
    Panel(
        "error-ratio",
        "5xx ratio",
        "ratio",
        {
            "5xx ratio": f'sum(rate(chowist_http_requests_total{{{USER_VIEWS},status=~"5.."}}[{RATE}])) / sum(rate(chowist_http_requests_total{{{USER_VIEWS}}}[{RATE}]))'
        },
    ),
    Panel(
        "burn-rate",
        "SLO burn rate",
        "x budget",
        {"{{slo}}": 'max by (slo) (slo:current_burn_rate:ratio{service="chowist"})'},
    ),
    Panel(
        "job-lag",
        "Job lag percentiles",
        "s",
        {
            f"p{int(q * 100)}": f"histogram_quantile({q}, sum by (le) (rate(chowist_job_lag_seconds_bucket[{RATE}])))"
            for q in (0.5, 0.95, 0.99)
        },
    ),
    Panel(
        "queue-depth",
        "Queue depth and inbox backlog",
        "items",
        {"queue depth": "sum(chowist_queue_depth)", "inbox backlog": "sum(chowist_inbox_backlog)"},
    ),
)
