"""A pack config: the few facts of someone's Django app, as overrides of the generic monitoring config.

In the style of kubernetes-mixin's `_config` overrides: a flat mapping (a YAML file, or the pack command's
flags) over `generic_config()`, the monitoring config without the Chowist layer. Every key is checked; an
unknown one is an error, not silently ignored.

    service: shop                     # the SLO series' service label and the dashboards' prefix
    job: shop-web                     # the Prometheus job that scrapes the app (required)
    excluded_views: [healthz, readyz] # URL names of probes; never user traffic
    objectives: {availability: 0.999, latency: 0.99}
    latency_threshold_s: 0.3          # must be one of the app's PROMETHEUS_LATENCY_BUCKETS
    latency_buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0]  # optional: checked
    window_sets: [production]         # add lab for compressed windows (tests, experiments)
    database: true                    # django-prometheus's DB backends are wired (Database & cache rows)
    cache: true                       # its cache backends are wired
    runbook_base_url: runbooks/       # where the runbooks are served; alerts link <url><alert>.md
    scrape_interval_s: 15             # the lab window set's windows must span a few scrapes
    lab_scale: 12                     # lab windows are production's divided by this
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from monitoring.config import PRODUCTION, WINDOW_SETS, Jobs, MonitoringConfig

# What a pack writes by default: production windows only (the lab set is for tests and experiments).
DEFAULT_WINDOW_SETS: tuple[str, ...] = (PRODUCTION,)
DEFAULT_RUNBOOK_BASE_URL = "runbooks/"
# Alertmanager's documented defaults for a route's timings.
ALERTMANAGER_DEFAULTS = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}
KEYS = (
    "service",
    "job",
    "excluded_views",
    "objectives",
    "latency_threshold_s",
    "latency_buckets",
    "window_sets",
    "database",
    "cache",
    "runbook_base_url",
    "scrape_interval_s",
    "lab_scale",
)
# Prometheus label values are free text, but the service also names rule groups, dashboard uids and files.
_SERVICE = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
_JOB = re.compile(r"^[A-Za-z0-9_.:-]+$")


class PackConfigError(ValueError):
    """A pack config that cannot become a monitoring config; the message names the key."""


def generic_config() -> MonitoringConfig:
    """The monitoring config of the generic pack: no Chowist layer, no probe views of Chowist's, production
    windows, runbooks beside it, and Alertmanager's own default timings (the lab's are for 10-minute runs)."""
    return MonitoringConfig(
        layers=(),
        excluded_views=(),
        window_sets=DEFAULT_WINDOW_SETS,
        runbook_base_url=DEFAULT_RUNBOOK_BASE_URL,
        group_wait=ALERTMANAGER_DEFAULTS["group_wait"],
        group_interval=ALERTMANAGER_DEFAULTS["group_interval"],
        repeat_interval=ALERTMANAGER_DEFAULTS["repeat_interval"],
    )


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PackConfigError(f"{key} must be a number, got {value!r}")
    return float(value)


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) and item for item in value):
        raise PackConfigError(f"{key} must be a list of names, got {value!r}")
    return tuple(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PackConfigError(f"{key} must be true or false, got {value!r}")
    return value


def config_from_overrides(overrides: Mapping[str, Any]) -> MonitoringConfig:
    """The generic config with `overrides` (the keys of this module's docstring) applied and checked."""
    unknown = sorted(set(overrides) - set(KEYS))
    if unknown:
        raise PackConfigError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    if not overrides.get("job"):
        raise PackConfigError("job is required: the Prometheus job name that scrapes your app")
    config = generic_config()
    service = overrides.get("service", "django")
    if not isinstance(service, str) or not _SERVICE.match(service):
        raise PackConfigError(f"service must be lower-case letters, digits and dashes (<= 30), got {service!r}")
    job = overrides["job"]
    if not isinstance(job, str) or not _JOB.match(job):
        raise PackConfigError(f"job must be a Prometheus job name, got {job!r}")
    config = replace(config, service=service, jobs=Jobs(app=job))
    if "excluded_views" in overrides:
        config = replace(config, excluded_views=_strings("excluded_views", overrides["excluded_views"]))
    slos = config.slos
    objectives = overrides.get("objectives", {})
    if not isinstance(objectives, Mapping) or set(objectives) - {"availability", "latency"}:
        raise PackConfigError(f"objectives maps availability and/or latency to a ratio, got {objectives!r}")
    for name, value in objectives.items():
        slos = replace(slos, **{name: replace(getattr(slos, name), objective=_number(f"objectives.{name}", value))})
    if "latency_threshold_s" in overrides:
        threshold = _number("latency_threshold_s", overrides["latency_threshold_s"])
        slos = replace(slos, latency=replace(slos.latency, threshold_s=threshold))
    config = replace(config, slos=slos)
    if "latency_buckets" in overrides:
        buckets = overrides["latency_buckets"]
        if not isinstance(buckets, list | tuple):
            raise PackConfigError(f"latency_buckets must be a list of seconds, got {buckets!r}")
        config = replace(config, latency_buckets=tuple(_number("latency_buckets", b) for b in buckets))
    if "window_sets" in overrides:
        window_sets = _strings("window_sets", overrides["window_sets"])
        if set(window_sets) - set(WINDOW_SETS):
            raise PackConfigError(f"window_sets must be among {', '.join(WINDOW_SETS)}, got {list(window_sets)}")
        config = replace(config, window_sets=tuple(dict.fromkeys(window_sets)))
    if "database" in overrides:
        config = replace(config, database_metrics=_bool("database", overrides["database"]))
    if "cache" in overrides:
        config = replace(config, cache_metrics=_bool("cache", overrides["cache"]))
    if "runbook_base_url" in overrides:
        config = replace(config, runbook_base_url=str(overrides["runbook_base_url"]))
    if "scrape_interval_s" in overrides:
        config = replace(config, scrape_interval_s=int(_number("scrape_interval_s", overrides["scrape_interval_s"])))
    if "lab_scale" in overrides:
        scale = int(_number("lab_scale", overrides["lab_scale"]))
        config = replace(config, windows=replace(config.windows, lab_scale=scale))
    return config


def load_overrides(path: Path) -> dict[str, Any]:
    """The mapping of a pack config file (YAML; JSON is YAML too)."""
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise PackConfigError(f"{path}: a pack config is a mapping of keys ({', '.join(KEYS)})")
    return document
