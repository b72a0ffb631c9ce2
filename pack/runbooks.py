"""The pack's runbooks, one Markdown page per alert, written with the app's own job, views and thresholds.

The lab keeps its hand-written runbooks (slo/runbooks/, which know Chowist's processes and faults); these are
the generic pages any django-prometheus app gets. Every page has the sections on-call needs, in this order:
what it means, the dashboard, three numbered checks with PromQL and a shell command, and mitigation.
"""

from __future__ import annotations

from monitoring.config import MonitoringConfig, le_matcher
from slo.rules import JOB_MISSING_ALERT, LATENCY_BUCKET_MISSING_ALERT
from slo.spec import SloSpec, slo_spec_list


def _percent(ratio: float) -> str:
    return f"{round(ratio * 100, 6):g}%"


def _promql(query: str) -> str:
    return f"   ```promql\n   {query}\n   ```\n"


def _shell(*lines: str) -> str:
    body = "".join(f"   {line}\n" for line in lines)
    return f"   ```shell\n{body}   ```\n"


def _page(alert: str, header: str, means: str, dashboard: str, checks: tuple[str, str, str], mitigation: str) -> str:
    numbered = "".join(f"{n}. {check}" for n, check in enumerate(checks, start=1))
    return (
        f"# {alert}\n\n{header}\n\n## What it means\n{means}\n\n## Dashboard\n{dashboard}\n\n"
        f"## First three checks\n{numbered}\n## Mitigation\n{mitigation}\n"
    )


def _burn(config: MonitoringConfig, spec: SloSpec, severity: str) -> str:
    alert = spec.page_alert if severity == "page" else spec.ticket_alert
    app = config.app_selector
    user = f"{app},{config.user_facing_selector}"
    m = config.metrics
    policy = next(policy for policy in config.burn_alerts if policy.severity == severity)
    conditions = "; or ".join(
        f"{c.factor:g}x over both {c.long_window} and {c.short_window}" for c in policy.conditions
    )
    header = (
        f"**Severity:** {severity} · **SLO:** {spec.slo} of `{config.service}`, objective {_percent(spec.objective)} "
        f"over {spec.period} (error budget {_percent(spec.error_budget)}) · **Rules:** group "
        f"`slo-{config.service}-{spec.slo}`."
    )
    means = (
        f"{spec.description} The error budget is being spent faster than it should: {conditions} "
        f"(1x would spend exactly the budget over {spec.period})."
        + (" Act now: at this rate the budget is gone within days." if severity == "page" else " Plan a fix.")
    )
    dashboard = f'Grafana **SLOs** → "Burn rate by window: {spec.slo}"; **Service overview** → ' + (
        '"5xx ratio by view".' if spec.slo == "availability" else '"Latency p95 by view" and "Requests in progress".'
    )
    if spec.slo == "availability":
        first = "Which views answer 5xx:\n" + _promql(
            f'sum by (view, status) (rate({m.http_requests}{{{user},status=~"5.."}}[5m]))'
        )
        second = "Since when, and whether every instance does it:\n" + _promql(
            f'sum by (instance) (rate({m.http_requests}{{{user},status=~"5.."}}[5m])) '
            f"/ sum by (instance) (rate({m.http_requests}{{{user}}}[5m]))"
        )
        mitigation = (
            "Roll back the last deploy if the errors started with it; otherwise follow the failing view's "
            "exception in the app's error tracker or logs, and restore what it depends on (database, cache, "
            "an upstream API)."
        )
    else:
        threshold = spec_threshold = config.slos.latency.threshold_s
        assert spec_threshold is not None
        first = "Which views are slow:\n" + _promql(
            f"histogram_quantile(0.95, sum by (view, le) (rate({m.http_request_duration}_bucket{{{user}}}[5m])))"
        )
        second = f"The share of each view's requests under {threshold * 1000:g} ms:\n" + _promql(
            f"sum by (view) (rate({m.http_request_duration}_bucket{{{user},{le_matcher(threshold)}}}[5m])) "
            f"/ sum by (view) (rate({m.http_request_duration}_count{{{user}}}[5m]))"
        )
        mitigation = (
            "Time in the database (Database & cache: queries per request, query duration) points at a query or "
            "a cold cache; requests in progress near workers x threads means saturation: add capacity or shed "
            "load. Roll back if it started with a deploy."
        )
    third = "Is the app itself reachable and scraped:\n" + _shell(
        f"curl -s 'http://PROMETHEUS:9090/api/v1/query?query=up%7B{config.app_selector.replace('=', '%3D')}%7D'"
    )
    return _page(alert, header, means, dashboard, (first, second, third), mitigation)


def _target_down(config: MonitoringConfig) -> str:
    jobs = ", ".join(f"`{job}`" for job in config.paged_jobs)
    header = (
        f"**Severity:** page for {jobs} · **Rules:** group `{config.service}-health` (fires after "
        f"{config.health_timings['production'].target_down_for} of `up == 0`)."
    )
    means = (
        "Prometheus could not scrape the target named by the alert's `job` and `instance` labels: the process is "
        "down, hung, or listening elsewhere. Its SLOs show no data meanwhile, not an outage: check the app itself."
    )
    dashboard = 'Grafana **Service overview** → "Scrape targets up"; Prometheus\'s target page shows the scrape error.'
    checks = (
        "Which targets are down:\n" + _promql(f'up{{job=~"{"|".join(config.paged_jobs)}"}} == 0'),
        "The scrape error Prometheus saw:\n"
        + _shell(
            "curl -s http://PROMETHEUS:9090/api/v1/targets | python3 -m json.tool | grep -E '\"(job|health|lastError)\"'"
        ),
        "Does the app answer on its metrics URL:\n"
        + _shell("curl -sS -o /dev/null -w '%{http_code}\\n' http://APP:PORT/metrics"),
    )
    mitigation = "Restart the process; if it is up but the scrape fails, fix the address or port in the scrape config."
    return _page(config.target_down_alert, header, means, dashboard, checks, mitigation)


def _job_missing(config: MonitoringConfig) -> str:
    job = config.jobs.app
    header = f"**Severity:** ticket · **Rules:** group `{config.service}-health`."
    means = (
        f"Prometheus has no target of job `{job}`, the job the pack's rules read. The scrape config names the app's "
        "job differently, or does not scrape it. Every SLI of the service is absent (no data), never a perfect 0, "
        "so the burn-rate alerts cannot fire."
    )
    dashboard = 'Grafana **SLOs** → "SLI (5m) by SLO" is empty; **Service overview** shows no data for the job.'
    checks = (
        "Which jobs Prometheus scrapes:\n" + _promql("count by (job) (up)"),
        "Which of them is a django-prometheus app:\n"
        + _promql(f"count by (job) ({config.metrics.http_requests_before_middlewares})"),
        "The job names of the loaded scrape config:\n"
        + _shell("curl -s http://PROMETHEUS:9090/api/v1/status/config | grep -o 'job_name: [^ ]*'"),
    )
    mitigation = (
        f"Name the app's scrape job `{job}`, or regenerate the pack with your job name (`job:` in the pack config) "
        "and load the new rules."
    )
    return _page(JOB_MISSING_ALERT, header, means, dashboard, checks, mitigation)


def _bucket_missing(config: MonitoringConfig) -> str:
    threshold = config.slos.latency.threshold_s
    assert threshold is not None
    histogram = config.metrics.http_request_duration
    header = f"**Severity:** ticket · **SLO:** latency · **Rules:** group `{config.service}-health`."
    means = (
        f"The latency SLO counts requests in the histogram bucket bounded by {threshold:g} s, and "
        f"`{histogram}` of job `{config.jobs.app}` has no such bucket: PROMETHEUS_LATENCY_BUCKETS is unset "
        "(django-prometheus's defaults) or the threshold sits between two buckets. The latency SLI is absent, "
        "never a perfect 0."
    )
    dashboard = 'Grafana **SLOs** → "SLI (5m) by SLO" has no latency line.'
    checks = (
        "The buckets the app exports:\n" + _promql(f"count by (le) ({histogram}_bucket{{{config.app_selector}}})"),
        "The buckets the settings declare:\n"
        + _shell(
            "python manage.py shell -c 'from django.conf import settings; print(settings.PROMETHEUS_LATENCY_BUCKETS)'"
        ),
        "The threshold the pack was generated with:\n" + _shell("grep -n latency_threshold_s my-pack.yaml"),
    )
    mitigation = (
        f"Add {threshold:g} to PROMETHEUS_LATENCY_BUCKETS and redeploy; or regenerate the pack with a "
        "`latency_threshold_s` that is one of the app's buckets."
    )
    return _page(LATENCY_BUCKET_MISSING_ALERT, header, means, dashboard, checks, mitigation)


def runbooks(config: MonitoringConfig) -> dict[str, str]:
    """Alert name -> its runbook page, for every alert of the generic pack."""
    pages = {}
    for spec in slo_spec_list(config=config):
        pages[spec.page_alert] = _burn(config, spec, "page")
        pages[spec.ticket_alert] = _burn(config, spec, "ticket")
    pages[config.target_down_alert] = _target_down(config)
    pages[JOB_MISSING_ALERT] = _job_missing(config)
    pages[LATENCY_BUCKET_MISSING_ALERT] = _bucket_missing(config)
    return pages
