"""The SLOs as rules and reports use them: monitoring.config's objectives, with SLI queries built from its
metric names, selectors and thresholds, and checked."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from monitoring.config import CHOWIST_LAYER, CONFIG, MonitoringConfig, Slo, le_matcher

WINDOW_PLACEHOLDER = "{{window}}"
_RANGE = f"[{WINDOW_PLACEHOLDER}]"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class SpecError(ValueError):
    """An SLO that cannot become rules; the message names the SLO and the field."""


@dataclass(frozen=True)
class SloSpec:
    service: str
    slo: str
    title: str
    objective: float
    period: str
    description: str
    # PromQL with {{window}} as the range; each aggregates to a single label-less series. The error query is 0,
    # not empty, while there is traffic without errors, and empty when its series are missing (no job, no
    # threshold bucket): the SLI is then absent, never a perfect 0.
    error_query: str
    total_query: str
    page_alert: str
    ticket_alert: str
    # For an SLI measured at the edge when there is one: 1 while the edge's series are the source, 0 while the
    # app's are (the fallback). Empty for SLIs with a single source.
    edge_source_query: str = ""

    @property
    def error_budget(self) -> float:
        # Rounded so 1 - 0.999 is written as 0.001, not 0.0010000000000000009.
        return round(1 - self.objective, 10)

    def error_query_for(self, window: str) -> str:
        return self.error_query.replace(WINDOW_PLACEHOLDER, window)

    def total_query_for(self, window: str) -> str:
        return self.total_query.replace(WINDOW_PLACEHOLDER, window)


def _user_facing_words(config: MonitoringConfig) -> str:
    views = config.all_excluded_views
    listed = f"{', '.join(views[:-1])} and {views[-1]}" if len(views) > 1 else views[0]
    return f"requests to user-facing views (every view except {listed})"


def _edge_up(config: MonitoringConfig) -> str:
    """Non-empty while the edge's target is up now. "No edge" means its target is not up now, not that its rate is
    empty: a rate keeps reading the samples of a stopped mtail for a whole window, and a lab that drops nginx
    between two variants would otherwise score the second on the first's traffic."""
    return f"on() group(up{{{config.edge_selector}}} == 1)"


def edge_source_query(config: MonitoringConfig = CONFIG) -> str:
    """1 while the edge SLIs read the edge's series, 0 while they fall back to the app's."""
    return f"vector(1) and {_edge_up(config)} or vector(0)"


def _availability(config: MonitoringConfig, slo: Slo) -> tuple[str, str, str]:
    requests = f"{config.metrics.http_requests}{{{config.app_selector},{config.user_facing_selector}"
    # The app's 5xx counter series appear with the first 5xx: until then its error query is 0 x the traffic.
    app_total = f"sum(rate({requests}}}{_RANGE}))"
    app_error = f"sum(rate({requests},{config.server_error_selector}}}{_RANGE})) or 0 * {app_total}"
    words = f"{_user_facing_words(config)} as the app answered them"
    if not config.has_layer(CHOWIST_LAYER):
        return app_error, app_total, f"Share of {words} without a 5xx status."
    # The lab measures at the edge when a proxy reports its responses (nginx through mtail): a 502 nginx
    # answers while no instance listens never reaches the app's metrics. Without edge series, the app's own.
    # Both queries pick the same source: the edge's error query is 0 (not empty) while the edge has traffic
    # but no 5xx yet, so `or` falls back to the app only when there is no edge at all.
    # "No edge" means its target is not up now (_edge_up).
    edge = f"{config.metrics.edge_responses}{{{config.edge_selector}"
    edge_up = _edge_up(config)
    # PromQL binds `*` before `and` before `or`: each line reads as its parentheses would, without them.
    edge_total = f"sum(rate({edge}}}{_RANGE})) and {edge_up}"
    edge_error = f"sum(rate({edge},{config.server_error_selector}}}{_RANGE})) and {edge_up} or 0 * {edge_total}"
    return (
        f"{edge_error} or {app_error}",
        f"{edge_total} or {app_total}",
        f"Share of requests answered without a 5xx status: as the proxy (nginx) answered them when it reports "
        f"them (health probes aside), else {words}.",
    )


def _threshold(slo: Slo) -> float:
    if slo.threshold_s is None or slo.threshold_s <= 0:
        raise SpecError(f"SLO {slo.name}: threshold_s must be a positive number of seconds, got {slo.threshold_s!r}")
    return slo.threshold_s


def _good_under(histogram: str, selector: str, threshold_s: float) -> tuple[str, str]:
    """(error, total): events above the bucket bounded by `threshold_s`, and all events."""
    total = f"sum(rate({histogram}_count{{{selector}}}{_RANGE}))"
    good = f"sum(rate({histogram}_bucket{{{selector},{le_matcher(threshold_s)}}}{_RANGE}))"
    return f"{total} - {good}", total


def _latency(config: MonitoringConfig, slo: Slo) -> tuple[str, str, str]:
    threshold = _threshold(slo)
    selector = f"{config.app_selector},{config.user_facing_selector}"
    histogram = config.metrics.http_request_duration
    # django-prometheus observes the latency of a request whose view raises twice (process_exception, then
    # process_response), in the same buckets: the slow count (all - under the threshold) cancels a fast raise
    # out, but the histogram's _count would count it twice. Events are responses, each counted once.
    app_error = (
        f"sum(rate({histogram}_count{{{selector}}}{_RANGE})) - "
        f"sum(rate({histogram}_bucket{{{selector},{le_matcher(threshold)}}}{_RANGE}))"
    )
    app_total = f"sum(rate({config.metrics.http_requests}{{{selector}}}{_RANGE}))"
    ms = f"{threshold * 1000:g}"
    if not config.has_layer(CHOWIST_LAYER):
        return (
            app_error,
            app_total,
            f"Share of {_user_facing_words(config)} served in under {ms} ms, whatever their status.",
        )
    # Measured at the edge when a proxy reports its request durations (nginx's $request_time, through mtail): from
    # nginx reading the request to its answer, so the wait in the kernel's accept backlog and gunicorn's queues,
    # which the app's histogram never sees, counts against the budget. Without an edge, the app's own histogram
    # (from Django's first middleware on: blind to that wait). The same switch as the availability SLI's.
    if threshold not in config.request_buckets_s:
        raise SpecError(f"SLO {slo.name}: threshold_s {threshold:g} is not a bucket of the edge histogram")
    edge_up = _edge_up(config)
    edge_error, edge_total = _good_under(config.metrics.edge_request_duration, config.edge_selector, threshold)
    # `-` binds before `and`, `and` before `or`: (edge count - edge good) and edge up, or the app's.
    error = f"{edge_error} and {edge_up} or {app_error}"
    total = f"{edge_total} and {edge_up} or {app_total}"
    return (
        error,
        total,
        f"Share of requests served in under {ms} ms, whatever their status: timed from the proxy (nginx) reading "
        f"them to its answer, queueing in front of the app included, when it reports them (health probes aside), else "
        f"{_user_facing_words(config)} as the app timed them (blind to queueing in front of it).",
    )


def _freshness(config: MonitoringConfig, slo: Slo) -> tuple[str, str, str]:
    # A task that never starts is never observed here; ChowistConsumerStalled covers that case.
    threshold = _threshold(slo)
    error, total = _good_under(config.metrics.job_lag, config.worker_selector, threshold)
    words = f"Share of background tasks, of every kind, that started within {threshold:g} s of being enqueued."
    return error, total, words


# The SLIs measured at the edge when it reports, the app's series otherwise.
EDGE_SLIS = frozenset({"availability", "latency"})

SLI_BUILDERS: dict[str, Callable[[MonitoringConfig, Slo], tuple[str, str, str]]] = {
    "availability": _availability,
    "latency": _latency,
    "freshness": _freshness,
}


def slo_spec_build(slo: Slo, *, config: MonitoringConfig = CONFIG) -> SloSpec:
    """One SLO of `config`, checked, with its SLI queries."""
    if not _NAME.match(slo.name):
        raise SpecError(f"SLO {slo.name!r}: the name must be a lower-case identifier")
    if slo.name not in SLI_BUILDERS:
        raise SpecError(f"SLO {slo.name}: no SLI is defined for it (known: {', '.join(SLI_BUILDERS)})")
    objective = slo.objective
    if isinstance(objective, bool) or not isinstance(objective, int | float) or not 0 < objective < 1:
        raise SpecError(
            f"SLO {slo.name}: objective must be a ratio between 0 and 1 (0.999 for 99.9%), got {objective!r}"
        )
    for key in ("page_alert", "ticket_alert"):
        name = getattr(slo, key)
        if not _ALERT_NAME.match(name):
            raise SpecError(f"SLO {slo.name}: {key} must be a CamelCase alert name, got {name!r}")
    error, total, description = SLI_BUILDERS[slo.name](config, slo)
    return SloSpec(
        service=config.service,
        slo=slo.name,
        title=slo.title,
        objective=float(objective),
        period=config.windows.period,
        description=description,
        error_query=error,
        total_query=total,
        page_alert=slo.page_alert,
        ticket_alert=slo.ticket_alert,
        edge_source_query=edge_source_query(config)
        if slo.name in EDGE_SLIS and config.has_layer(CHOWIST_LAYER)
        else "",
    )


def slo_spec_list(*, config: MonitoringConfig = CONFIG) -> list[SloSpec]:
    """Every SLO of `config`, ordered by name (the order of the generated rule groups); names must be unique."""
    specs = sorted((slo_spec_build(slo, config=config) for slo in config.enabled_slos), key=lambda spec: spec.slo)
    names = [spec.slo for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SpecError(f"SLO {', '.join(duplicates)} is defined more than once")
    return specs
