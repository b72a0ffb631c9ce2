"""Prometheus rule groups built from the SLO specs and monitoring.config's policy (pure functions, no I/O)."""

from __future__ import annotations

from typing import Any

from monitoring.config import (
    CHOWIST_LAYER,
    CONFIG,
    LAB,
    PRODUCTION,
    BurnAlert,
    BurnCondition,
    MonitoringConfig,
    le_matcher,
)
from slo.policy import duration_seconds, window_duration
from slo.spec import SloSpec

# The dashboards an alert points to (grafana/panels.py titles them "<Service> / <name>").
DASHBOARD_SLOS = "SLOs"
DASHBOARD_SERVICE = "Service overview"
DASHBOARD_JOBS = "Background jobs"
DASHBOARD_DATABASE = "Database & cache"

Rule = dict[str, Any]


def _number(value: float) -> str:
    """A float as PromQL writes it: 0.0144 rather than 0.014400000000000001."""
    return repr(round(value, 10))


def _percent(ratio: float) -> str:
    return f"{round(ratio * 100, 6):g}%"


def _window_set_labels(window_set: str) -> dict[str, str]:
    # Production series carry no window_set label at all, so a lab file can never pass for them.
    return {"window_set": LAB} if window_set == LAB else {}


def _selector(spec: SloSpec, window_set: str) -> str:
    # window_set="" matches only series without the label: production alerts never read lab series.
    label = LAB if window_set == LAB else ""
    return f'{{service="{spec.service}",slo="{spec.slo}",window_set="{label}"}}'


def _runbook_url(alert: str, config: MonitoringConfig) -> str:
    return f"{config.runbook_base_url}{alert}.md"


def sli_error_ratio_expr(spec: SloSpec, *, window: str) -> str:
    """Error ratio over `window`. No traffic at all (0/0) counts as no errors, not as NaN.

    No series means no data, never a perfect SLI: the error query is empty when the job or the threshold bucket
    is missing (no `or vector(0)`), and then both branches are; so is a missing total. The configuration alerts
    say why.
    """
    error = spec.error_query_for(window)
    total = spec.total_query_for(window)
    return f"(\n  {error}\n)\n/\n(({total}) > 0)\nor\n0 * (\n  {error}\n)\nand\n(({total}) == 0)\n"


def slo_recording_rules(spec: SloSpec, *, window_set: str, config: MonitoringConfig = CONFIG) -> list[Rule]:
    labels = {"service": spec.service, "slo": spec.slo, **_window_set_labels(window_set)}
    selector = _selector(spec, window_set)
    budget = _number(spec.error_budget)
    rules: list[Rule] = [
        {
            "record": f"slo:sli_error:ratio_rate{name}",
            "expr": sli_error_ratio_expr(spec, window=window_duration(name, window_set=window_set, config=config)),
            "labels": dict(labels),
        }
        for name in config.windows.names
    ]
    if spec.edge_source_query:
        # Says which series the SLI reads now: 1 the proxy's (the edge), 0 the app's fallback, blind to queueing.
        rules.append({"record": "slo:sli_source_edge:bool", "expr": spec.edge_source_query, "labels": dict(labels)})
    period = window_duration(config.windows.period, window_set=window_set, config=config)
    rules += [
        {"record": "slo:objective:ratio", "expr": f"vector({_number(spec.objective)})", "labels": dict(labels)},
        {"record": "slo:error_budget:ratio", "expr": f"vector({budget})", "labels": dict(labels)},
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate5m{selector} / {budget}",
            "labels": dict(labels),
        },
        {
            # The time-average of the 5m ratio, as Sloth does: cheap over 30 days, and an idle hour
            # counts as a good hour.
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - avg_over_time(slo:sli_error:ratio_rate5m{selector}[{period}]) / {budget}",
            "labels": dict(labels),
        },
    ]
    return rules


def _condition_expr(spec: SloSpec, condition: BurnCondition, *, window_set: str) -> str:
    selector = _selector(spec, window_set)
    threshold = _number(condition.factor * spec.error_budget)
    return (
        f"(\n  slo:sli_error:ratio_rate{condition.long_window}{selector} > {threshold}\n"
        f"  and\n  slo:sli_error:ratio_rate{condition.short_window}{selector} > {threshold}\n)"
    )


def _condition_words(condition: BurnCondition, *, window_set: str, config: MonitoringConfig) -> str:
    long_window, short_window = condition.long_window, condition.short_window
    if window_set == LAB:
        real_long = window_duration(long_window, window_set=LAB, config=config)
        real_short = window_duration(short_window, window_set=LAB, config=config)
        return f"{condition.factor:g}x over {real_long} and {real_short} (lab windows for {long_window} and {short_window})"
    return f"{condition.factor:g}x over {long_window} and {short_window}"


def burn_alert_rule(spec: SloSpec, policy: BurnAlert, *, window_set: str, config: MonitoringConfig = CONFIG) -> Rule:
    name = spec.page_alert if policy.severity == "page" else spec.ticket_alert
    expr = "\nor\n".join(_condition_expr(spec, c, window_set=window_set) for c in policy.conditions) + "\n"
    conditions = "; or ".join(_condition_words(c, window_set=window_set, config=config) for c in policy.conditions)
    urgency = "fast: page" if policy.severity == "page" else "slowly: ticket"
    return {
        "alert": name,
        "expr": expr,
        "labels": {"severity": policy.severity, **_window_set_labels(window_set)},
        "annotations": {
            "summary": f"{spec.title} SLO of {spec.service} is burning its error budget {urgency}",
            "description": (
                f"{spec.description} Objective {_percent(spec.objective)} over {spec.period}, error budget "
                f"{_percent(spec.error_budget)}. The error ratio exceeds the budget by {conditions}. "
                "Error ratio over the long window: {{ $value | humanizePercentage }}."
            ),
            "runbook_url": _runbook_url(name, config),
            "dashboard": DASHBOARD_SLOS,
        },
    }


def slo_rule_group(spec: SloSpec, *, window_set: str, config: MonitoringConfig = CONFIG) -> dict[str, Any]:
    # Records come before the alerts that read them: a group evaluates its rules in order.
    prefix = "slo-lab" if window_set == LAB else "slo"
    rules = slo_recording_rules(spec, window_set=window_set, config=config)
    rules += [burn_alert_rule(spec, policy, window_set=window_set, config=config) for policy in config.burn_alerts]
    return {"name": f"{prefix}-{spec.service}-{spec.slo}", "rules": rules}


# Configuration alerts: a setup the SLIs cannot measure leaves them absent; these say why.
JOB_MISSING_ALERT = "SLOConfigJobMissing"
LATENCY_BUCKET_MISSING_ALERT = "SLOConfigLatencyBucketMissing"
CONFIG_ALERTS = (JOB_MISSING_ALERT, LATENCY_BUCKET_MISSING_ALERT)


def _target_down_rules(config: MonitoringConfig, *, window_set: str) -> list[Rule]:
    timings = config.health_timings[window_set]
    extra = _window_set_labels(window_set)
    annotations = {
        "summary": "Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}",
        "description": (
            f"up has been 0 for {timings.target_down_for}: the process is gone, hung, or listening elsewhere. "
            "Its metrics, and every SLO computed from them, are blind meanwhile."
        ),
        "runbook_url": _runbook_url(config.target_down_alert, config),
        "dashboard": DASHBOARD_SERVICE,
    }
    groups = (("page", config.paged_jobs), ("ticket", config.ticketed_jobs))
    # Only this config's own jobs, by name: a shared Prometheus scrapes targets that are none of ours.
    return [
        {
            "alert": config.target_down_alert,
            "expr": f'up{{job=~"{"|".join(jobs)}"}} == 0\n',
            "for": timings.target_down_for,
            "labels": {"severity": severity, "service": config.service, **extra},
            "annotations": annotations,
        }
        for severity, jobs in groups
        if jobs
    ]


def _config_rules(config: MonitoringConfig, *, window_set: str) -> list[Rule]:
    """The SLIs read nothing: the app's job has no target, or the latency threshold is not a bucket edge."""
    timings = config.health_timings[window_set]
    extra = _window_set_labels(window_set)
    job = config.jobs.app
    histogram = f"{config.metrics.http_request_duration}_bucket"
    latency = config.slos.latency
    assert latency.threshold_s is not None
    threshold_ms = f"{latency.threshold_s * 1000:g}"
    return [
        {
            # absent() carries the job label of its matcher into the alert.
            "alert": JOB_MISSING_ALERT,
            "expr": f'absent(up{{job="{job}"}})\n',
            "for": timings.target_down_for,
            "labels": {"severity": "ticket", "service": config.service, **extra},
            "annotations": {
                "summary": f"No scrape target has job {job!r}: the SLOs of {config.service} measure nothing",
                "description": (
                    f"Prometheus has no target of job {job!r} (the job the rules of service {config.service} "
                    "read): the scrape config names the job differently, or the job is not configured. Every SLI "
                    "of the service is absent, not perfect."
                ),
                "runbook_url": _runbook_url(JOB_MISSING_ALERT, config),
                "dashboard": DASHBOARD_SLOS,
            },
        },
        {
            # The histogram is there but has no bucket ending at the threshold (none set, or the threshold sits
            # between two buckets): the latency SLI is absent.
            "alert": LATENCY_BUCKET_MISSING_ALERT,
            "expr": (
                f'group({histogram}{{job="{job}"}})\n'
                f'unless on()\ngroup({histogram}{{job="{job}",{le_matcher(latency.threshold_s)}}})\n'
            ),
            "for": timings.target_down_for,
            "labels": {"severity": "ticket", "service": config.service, "slo": latency.name, **extra},
            "annotations": {
                "summary": (
                    f"{job} has no {latency.threshold_s:g} s latency bucket: the latency SLO of "
                    f"{config.service} measures nothing"
                ),
                "description": (
                    f"The latency SLO counts requests in the bucket bounded by {threshold_ms} ms, and "
                    f"{histogram} of job {job} has none: add {latency.threshold_s:g} to the app's "
                    "PROMETHEUS_LATENCY_BUCKETS. Until then the latency SLI is absent, not perfect."
                ),
                "runbook_url": _runbook_url(LATENCY_BUCKET_MISSING_ALERT, config),
                "dashboard": DASHBOARD_SLOS,
            },
        },
    ]


def _chowist_rules(config: MonitoringConfig, *, window_set: str) -> list[Rule]:
    """The lab's layer: the consumer holding work it does not process, a process serving without a telemetry
    signal, the read replica lagging."""
    timings = config.health_timings[window_set]
    extra = _window_set_labels(window_set)
    stalled = timings.consumer_stalled_window
    metrics, worker = config.metrics, config.worker_selector
    return [
        {
            # The age of the oldest waiting item already says "for how long", so no `for:`. A consumer
            # that never finished a task has no chowist_jobs_total series yet: `or vector(0)`.
            "alert": "ChowistConsumerStalled",
            "expr": (
                "(\n"
                f"  max({metrics.queue_oldest_pending_age}{{{worker}}}) > {duration_seconds(stalled)}\n"
                "  or\n"
                f"  max({metrics.inbox_oldest_pending_age}{{{worker}}}) > {duration_seconds(stalled)}\n"
                ")\n"
                "and on()\n"
                "(\n"
                f"  (sum(increase({metrics.jobs}{{{worker}}}[{stalled}])) or vector(0)) == 0\n"
                ")\n"
            ),
            "labels": {"severity": "page", "service": config.service, **extra},
            "annotations": {
                "summary": "The consumer holds work it is not processing",
                "description": (
                    f"Work has waited more than {stalled} (oldest item: {{{{ $value | humanizeDuration }}}}) "
                    f"in the huey queue or the interactions inbox, and no task finished in the last {stalled}. "
                    "Task lag is only observed when a task starts, so the freshness SLO cannot see this."
                ),
                "runbook_url": _runbook_url("ChowistConsumerStalled", config),
                "dashboard": DASHBOARD_JOBS,
            },
        },
        {
            # The process serves (that is the point of observability.setup.signal_start) but one signal is
            # missing until it restarts: a ticket. The counter only ever rises, so no `for:`.
            "alert": "ChowistTelemetryDegraded",
            "expr": f"sum by (job, instance, signal) ({metrics.telemetry_setup_failures}) > 0\n",
            "labels": {"severity": "ticket", "service": config.service, **extra},
            "annotations": {
                "summary": "{{ $labels.job }} at {{ $labels.instance }} runs without its {{ $labels.signal }} signal",
                "description": (
                    "A telemetry signal failed to start in {{ $value }} process(es) of this target; they serve "
                    "without it (errors: no error reports; tracing: no spans; metrics: no consumer scrape) "
                    "until they restart. The telemetry_setup_failed log line says why."
                ),
                "runbook_url": _runbook_url("ChowistTelemetryDegraded", config),
                "dashboard": DASHBOARD_SERVICE,
            },
        },
        {
            # Stale reads, not an outage: a ticket. The app keeps a writer's reads on the primary only for
            # the read-your-writes window, so lag beyond it can hide a client's own write from it.
            "alert": "ChowistReplicaLagging",
            "expr": f'max by (server) ({metrics.replica_lag}{{job="{config.jobs.postgres}"}}) > '
            f"{_number(config.replica_lag_threshold_s)}\n",
            "for": timings.replica_lag_for,
            "labels": {"severity": "ticket", "service": config.service, **extra},
            "annotations": {
                "summary": "The read replica {{ $labels.server }} is {{ $value | humanizeDuration }} behind",
                "description": (
                    f"Replication lag has been above {config.replica_lag_threshold_s:g} s for "
                    f"{timings.replica_lag_for}. Reads routed to the replica are that old; a client whose "
                    "read-your-writes window has ended may not see its own write."
                ),
                "runbook_url": _runbook_url("ChowistReplicaLagging", config),
                "dashboard": DASHBOARD_DATABASE,
            },
        },
    ]


def health_rule_group(*, window_set: str, config: MonitoringConfig = CONFIG) -> dict[str, Any]:
    """Plain alerts: own scrape targets down, a setup the SLIs cannot measure, and the enabled layers' alerts."""
    rules = _target_down_rules(config, window_set=window_set) + _config_rules(config, window_set=window_set)
    if config.has_layer(CHOWIST_LAYER):
        rules += _chowist_rules(config, window_set=window_set)
    return {
        "name": f"{config.service}-health-lab" if window_set == LAB else f"{config.service}-health",
        "rules": rules,
    }


def rule_file(specs: list[SloSpec], *, window_set: str, config: MonitoringConfig = CONFIG) -> dict[str, Any]:
    """The whole rule file for one window set."""
    if window_set not in (PRODUCTION, LAB):
        raise ValueError(f"unknown window set {window_set!r}")
    groups = [slo_rule_group(spec, window_set=window_set, config=config) for spec in specs]
    groups.append(health_rule_group(window_set=window_set, config=config))
    return {"groups": groups}


def alert_names(specs: list[SloSpec], *, config: MonitoringConfig = CONFIG) -> list[str]:
    """Every alert name the rule files define, in order."""
    names = [name for spec in specs for name in (spec.page_alert, spec.ticket_alert)]
    names += [config.target_down_alert, *CONFIG_ALERTS]
    if config.has_layer(CHOWIST_LAYER):
        names += ["ChowistConsumerStalled", "ChowistTelemetryDegraded", "ChowistReplicaLagging"]
    return names
