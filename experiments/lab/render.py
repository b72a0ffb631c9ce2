"""Configs the lab writes under LAB_DIR: Prometheus and Alertmanager from prometheus/generate.py (the
generator of the committed configs) with the lab's host, ports and window set; pgbouncer's from the lab config.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from experiments.lab.config import LabConfig
from monitoring.config import CONFIG, Ports, rule_file_path
from prometheus import generate as prometheus_generate


def lab_ports(config: LabConfig) -> Ports:
    return replace(
        CONFIG.ports,
        app_metrics=config.app_metrics_port,
        consumer_metrics=config.consumer_metrics_port,
        prometheus=config.prometheus_port,
        alertmanager=config.alertmanager_port,
        webhook=config.webhook_port,
    )


def prometheus_config(config: LabConfig) -> dict[str, Any]:
    """The native config with the lab's ports, loading only the rule file of the lab's window set."""
    return prometheus_generate.prometheus_config(
        variant=prometheus_generate.NATIVE,
        host=config.host,
        ports=lab_ports(config),
        rule_files=[str(rule_file_path(config.window_set))],
    )


def prometheus_storage_flags(config: LabConfig) -> list[str]:
    """The lab Prometheus's TSDB flags: blocks as short as LAB_PROMETHEUS_BLOCK_MINUTES (config.py says why).
    The maximum block length stays Prometheus's (a tenth of the retention), so old blocks still merge."""
    return [f"--storage.tsdb.min-block-duration={config.prometheus_block_minutes}m"]


def alertmanager_config(config: LabConfig) -> dict[str, Any]:
    return prometheus_generate.alertmanager_config(
        variant=prometheus_generate.NATIVE, host=config.host, ports=lab_ports(config)
    )


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
    path.write_text(prometheus_generate.render_yaml(data))
    return path
