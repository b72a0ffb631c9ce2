"""Configs the lab generates under LAB_DIR from the committed ones, with the configured ports substituted.

prometheus/prometheus.yml and prometheus/alertmanager.yml (the prometheus/ folder's files) are the source;
the lab only rewrites addresses, resolves rule file paths and picks the rule window set. When a source file
is absent (a partial checkout) a minimal equivalent is used so the lab still runs.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import yaml

from experiments.lab.config import ROOT, WINDOW_SETS, LabConfig

PROMETHEUS_SOURCE = ROOT / "prometheus" / "prometheus.yml"
ALERTMANAGER_SOURCE = ROOT / "prometheus" / "alertmanager.yml"
RULES_DIR = ROOT / "slo" / "rules"
# 5 s scrapes let a 10-minute experiment resolve its windows (prometheus/ uses the same).
FALLBACK_SCRAPE_INTERVAL = "5s"

APP_JOB = "chowist-app"
WORKER_JOB = "chowist-worker"
PROMETHEUS_JOB = "prometheus"


def _load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    return yaml.safe_load(path.read_text()) or {}


def scrape_ports(config: LabConfig) -> dict[str, int]:
    return {
        APP_JOB: config.app_metrics_port,
        WORKER_JOB: config.consumer_metrics_port,
        PROMETHEUS_JOB: config.prometheus_port,
    }


def prometheus_config(config: LabConfig, *, source: Path = PROMETHEUS_SOURCE) -> dict[str, Any]:
    base = _load(source)
    if base is None:
        base = {
            "global": {"scrape_interval": FALLBACK_SCRAPE_INTERVAL, "evaluation_interval": FALLBACK_SCRAPE_INTERVAL},
            "scrape_configs": [{"job_name": job} for job in scrape_ports(config)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": []}]}]},
        }
    ports = scrape_ports(config)
    for job in base.get("scrape_configs") or []:
        port = ports.get(job.get("job_name"))
        if port is not None:
            job["static_configs"] = [{"targets": [f"{config.host}:{port}"]}]
    for manager in (base.get("alerting") or {}).get("alertmanagers") or []:
        manager["static_configs"] = [{"targets": [f"{config.host}:{config.alertmanager_port}"]}]
    base["rule_files"] = rule_files(base.get("rule_files") or [], source.parent, config.window_set)
    return base


def rule_files(patterns: list[str], base_dir: Path, window_set: str) -> list[str]:
    """Absolute rule file paths, keeping only the chosen window set's SLO rules.

    A rule file whose name carries a window set name (e.g. `slo-lab.rules.yml`) belongs to that set; the
    others (target down, consumer stalled) apply to both.
    """
    others = [name for name in WINDOW_SETS if name != window_set]
    chosen: list[str] = []
    for pattern in patterns:
        absolute = pattern if Path(pattern).is_absolute() else str((base_dir / pattern).resolve())
        for path in sorted(glob.glob(absolute)) or []:
            name = Path(path).name
            if any(other in name for other in others):
                continue
            chosen.append(path)
    return chosen


def alertmanager_config(config: LabConfig, *, source: Path = ALERTMANAGER_SOURCE) -> dict[str, Any]:
    base = _load(source)
    webhook = f"{config.url(config.webhook_port)}/alertmanager"
    if base is None:
        base = {
            "route": {
                "receiver": "lab-webhook",
                "group_by": ["alertname", "severity"],
                "group_wait": "5s",
                "group_interval": "10s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "lab-webhook", "webhook_configs": [{"url": webhook, "send_resolved": True}]}],
        }
    for receiver in base.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            parsed = urlparse(hook.get("url") or webhook)
            hook["url"] = urlunparse(parsed._replace(scheme="http", netloc=f"{config.host}:{config.webhook_port}"))
    return base


def pgbouncer_ini(config: LabConfig, *, auth_file: Path) -> str:
    """Transaction pooling in front of the services database, listening on the lab's pgbouncer port."""
    db = urlparse(config.services_database_url)
    name = db.path.lstrip("/")
    target = f"host={db.hostname or '127.0.0.1'} port={db.port or 5432} dbname={name}"
    if db.username:
        target += f" user={db.username}"
    return "\n".join(
        [
            "[databases]",
            f"{name} = {target}",
            "",
            "[pgbouncer]",
            f"listen_addr = {config.host}",
            f"listen_port = {config.pgbouncer_port}",
            # No unix socket: /var/run/postgresql may not be writable by the user pgbouncer runs as.
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {auth_file}",
            "pool_mode = transaction",
            "max_client_conn = 500",
            "default_pool_size = 20",
            "ignore_startup_parameters = extra_float_digits,options",
            "server_reset_query =",
            "",
        ]
    )


def pgbouncer_userlist(config: LabConfig) -> str:
    user = urlparse(config.services_database_url).username or "postgres"
    return f'"{user}" ""\n'


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
