"""The lab's defaults, in one place, read from the environment.

Every port, path and timeout the native lab uses is a field of `LabConfig`; `LabConfig.from_env()` reads the
environment once and keyword overrides win (tests pass free ports and a temporary LAB_DIR).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from monitoring.config import CONFIG, LAB, WINDOW_SETS

ROOT = Path(__file__).resolve().parents[2]

PROFILES = ("embedded", "services")
PROXIES = ("none", "nginx")

DEFAULT_APP_PORT = 8000
DEFAULT_APP_METRICS_PORT = CONFIG.ports.app_metrics
DEFAULT_CONSUMER_METRICS_PORT = CONFIG.ports.consumer_metrics
DEFAULT_PROMETHEUS_PORT = CONFIG.ports.prometheus
DEFAULT_ALERTMANAGER_PORT = CONFIG.ports.alertmanager
DEFAULT_WEBHOOK_PORT = CONFIG.ports.webhook
DEFAULT_PGBOUNCER_PORT = 6432
DEFAULT_PROXY_PORT = 8080
DEFAULT_NGINX_STATUS_PORT = 8081
# Instance n (2, 3, ...) of APP_INSTANCES listens on APP_PORT + n - 1 and serves its metrics on
# APP_METRICS_PORT + INSTANCE_METRICS_OFFSET + n - 1 (9111, 9112, ...: clear of the consumer's 9102).
INSTANCE_METRICS_OFFSET = 9
MAX_APP_INSTANCES = 8
DEFAULT_REPLICA_PORT = 5433
DEFAULT_POSTGRES_EXPORTER_PORT = CONFIG.ports.postgres_exporter
DEFAULT_REPLICA_EXPORTER_PORT = CONFIG.ports.postgres_exporter + 1
DEFAULT_REDIS_EXPORTER_PORT = CONFIG.ports.redis_exporter
DEFAULT_NGINX_EXPORTER_PORT = 9113
DEFAULT_SERVICES_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chowist_lab"
DEFAULT_SERVICES_REDIS_URL = "redis://127.0.0.1:6379/1"
# Readiness covers migrate-free start-up of gunicorn, the consumer and Prometheus on a busy 2-core box.
DEFAULT_READY_TIMEOUT_S = 60.0
# gunicorn's graceful stop waits for in-flight requests; longer than this means something is stuck.
DEFAULT_STOP_TIMEOUT_S = 15.0
DEFAULT_LOG_TAIL_LINES = 20


class LabConfigError(ValueError):
    """A lab setting has a value the lab cannot use."""


@dataclass(frozen=True)
class LabConfig:
    lab_dir: Path = ROOT / "var" / "lab"
    # The app's and consumer's VAR_DIR (database, huey storage, cache, spans, faults): shared with
    # `make run`/`make seed`, so `manage.py seed_demo` and `manage.py fault` act on the lab's app.
    var_dir: Path = ROOT / "var"
    profile: str = "embedded"
    app_port: int = DEFAULT_APP_PORT
    app_metrics_port: int = DEFAULT_APP_METRICS_PORT
    consumer_metrics_port: int = DEFAULT_CONSUMER_METRICS_PORT
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT
    alertmanager_port: int = DEFAULT_ALERTMANAGER_PORT
    webhook_port: int = DEFAULT_WEBHOOK_PORT
    pgbouncer_port: int = DEFAULT_PGBOUNCER_PORT
    pgbouncer: bool = False
    pgbouncer_user: str = "postgres"
    # nginx in front of the app instances (both profiles): clients then use proxy_port.
    proxy: str = "none"
    proxy_port: int = DEFAULT_PROXY_PORT
    nginx_status_port: int = DEFAULT_NGINX_STATUS_PORT
    app_instances: int = 1
    # Services profile: a streaming read replica of the database (pg_basebackup, hot standby) on replica_port.
    replica: bool = False
    replica_port: int = DEFAULT_REPLICA_PORT
    # Services profile: prometheus-postgres-exporter, -redis-exporter (and -nginx-exporter with the proxy).
    exporters: bool = True
    postgres_exporter_port: int = DEFAULT_POSTGRES_EXPORTER_PORT
    # A second postgres exporter for the replica: 0.11 reports duplicate series when given two servers.
    replica_exporter_port: int = DEFAULT_REPLICA_EXPORTER_PORT
    redis_exporter_port: int = DEFAULT_REDIS_EXPORTER_PORT
    nginx_exporter_port: int = DEFAULT_NGINX_EXPORTER_PORT
    database_url: str = ""
    redis_url: str = ""
    window_set: str = LAB
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise LabConfigError(f"profile {self.profile!r} must be one of {', '.join(PROFILES)}")
        if self.window_set not in WINDOW_SETS:
            raise LabConfigError(f"window set {self.window_set!r} must be one of {', '.join(WINDOW_SETS)}")
        if self.ready_timeout_s <= 0 or self.stop_timeout_s <= 0:
            raise LabConfigError("LAB_READY_TIMEOUT_S and LAB_STOP_TIMEOUT_S must be positive")
        if self.proxy not in PROXIES:
            raise LabConfigError(f"LAB_PROXY={self.proxy!r} must be one of {', '.join(PROXIES)}")
        if not 1 <= self.app_instances <= MAX_APP_INSTANCES:
            raise LabConfigError(f"APP_INSTANCES={self.app_instances} must be between 1 and {MAX_APP_INSTANCES}")
        if self.app_instances > 1 and self.proxy == "none":
            raise LabConfigError("APP_INSTANCES above 1 needs a load balancer in front: set LAB_PROXY=nginx")
        ports = {name: getattr(self, name) for name in self.port_fields()}
        for n in range(2, self.app_instances + 1):
            ports[f"app_instance_{n}_port"], ports[f"app_instance_{n}_metrics_port"] = self.instance_ports(n)
        for name, port in ports.items():
            if not 1 <= port <= 65535:
                raise LabConfigError(f"{name.upper()}={port} is not a TCP port")
        in_use = [name for name in ports if self._port_used(name)]
        if len({ports[name] for name in in_use}) != len(in_use):
            raise LabConfigError(f"two lab components share a port: { {name: ports[name] for name in in_use} }")
        object.__setattr__(self, "lab_dir", _absolute(self.lab_dir))
        object.__setattr__(self, "var_dir", _absolute(self.var_dir))

    @staticmethod
    def port_fields() -> tuple[str, ...]:
        return tuple(f.name for f in fields(LabConfig) if f.name.endswith("_port"))

    def _port_used(self, name: str) -> bool:
        services = self.profile == "services"
        exporters = services and self.exporters
        return {
            "pgbouncer_port": self.pgbouncer,
            "proxy_port": self.proxy == "nginx",
            "nginx_status_port": self.proxy == "nginx",
            "replica_port": self.replica,
            "postgres_exporter_port": exporters,
            "replica_exporter_port": exporters and self.replica,
            "redis_exporter_port": exporters,
            "nginx_exporter_port": exporters and self.proxy == "nginx",
        }.get(name, True)

    def instance_ports(self, n: int) -> tuple[int, int]:
        """(app port, metrics port) of app instance `n` (1 is APP_PORT / APP_METRICS_PORT)."""
        if n == 1:
            return self.app_port, self.app_metrics_port
        return self.app_port + n - 1, self.app_metrics_port + INSTANCE_METRICS_OFFSET + n - 1

    @property
    def public_port(self) -> int:
        """Where clients send requests: nginx when it runs, else the (single) app instance."""
        return self.proxy_port if self.proxy == "nginx" else self.app_port

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LabConfig:
        """Defaults, then the environment, then `overrides` (field names, e.g. app_port=18000)."""
        environ = os.environ if environ is None else environ
        raw: dict[str, tuple[str, str | None]] = {
            "lab_dir": env_raw("LAB_DIR", environ),
            "var_dir": env_raw("VAR_DIR", environ),
            "profile": env_raw("LAB_PROFILE", environ),
            "app_port": env_raw("APP_PORT", environ),
            "app_metrics_port": env_raw("APP_METRICS_PORT", environ),
            "consumer_metrics_port": env_raw("CONSUMER_METRICS_PORT", environ),
            "prometheus_port": env_raw("PROMETHEUS_PORT", environ),
            "alertmanager_port": env_raw("ALERTMANAGER_PORT", environ),
            "webhook_port": env_raw("WEBHOOK_PORT", environ),
            "pgbouncer_port": env_raw("PGBOUNCER_PORT", environ),
            "pgbouncer": env_raw("LAB_PGBOUNCER", environ),
            "pgbouncer_user": env_raw("PGBOUNCER_USER", environ),
            "proxy": env_raw("LAB_PROXY", environ),
            "proxy_port": env_raw("LAB_PROXY_PORT", environ),
            "nginx_status_port": env_raw("NGINX_STATUS_PORT", environ),
            "app_instances": env_raw("APP_INSTANCES", environ),
            "replica": env_raw("LAB_REPLICA", environ),
            "replica_port": env_raw("LAB_REPLICA_PORT", environ),
            "exporters": env_raw("LAB_EXPORTERS", environ),
            "postgres_exporter_port": env_raw("POSTGRES_EXPORTER_PORT", environ),
            "replica_exporter_port": env_raw("REPLICA_EXPORTER_PORT", environ),
            "redis_exporter_port": env_raw("REDIS_EXPORTER_PORT", environ),
            "nginx_exporter_port": env_raw("NGINX_EXPORTER_PORT", environ),
            "database_url": env_raw("DATABASE_URL", environ),
            "redis_url": env_raw("REDIS_URL", environ),
            "window_set": env_raw("LAB_WINDOW_SET", environ),
            "ready_timeout_s": env_raw("LAB_READY_TIMEOUT_S", environ),
            "stop_timeout_s": env_raw("LAB_STOP_TIMEOUT_S", environ),
        }
        types = {f.name: f.type for f in fields(cls)}
        values = {
            name: _parse(env_name, value, types[name]) for name, (env_name, value) in raw.items() if value is not None
        }
        unknown = set(overrides) - set(types)
        if unknown:
            raise LabConfigError(f"unknown LabConfig fields: {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)

    def with_profile(
        self,
        profile: str | None,
        *,
        pgbouncer: bool | None = None,
        proxy: str | None = None,
        app_instances: int | None = None,
        replica: bool | None = None,
    ) -> LabConfig:
        profile = profile or self.profile
        if pgbouncer is None:
            # pgbouncer only exists in front of PostgreSQL: switching to embedded drops it unless asked for.
            pgbouncer = self.pgbouncer and profile == "services"
        if replica is None:
            replica = self.replica and profile == "services"
        return replace(
            self,
            profile=profile,
            pgbouncer=pgbouncer,
            proxy=proxy or self.proxy,
            app_instances=app_instances or self.app_instances,
            replica=replica,
        )

    @property
    def layout(self) -> tuple[str, bool, str, int, bool]:
        """What a running lab cannot change without `down`: profile, pgbouncer, proxy, instances, replica."""
        return (self.profile, self.pgbouncer, self.proxy, self.app_instances, self.replica)

    def describe_layout(self) -> str:
        parts = [self.profile]
        if self.pgbouncer:
            parts.append("pgbouncer")
        if self.proxy != "none":
            parts.append(self.proxy)
        if self.app_instances > 1:
            parts.append(f"{self.app_instances} app instances")
        if self.replica:
            parts.append("read replica")
        return " + ".join(parts)

    @property
    def services_database_url(self) -> str:
        return self.database_url or DEFAULT_SERVICES_DATABASE_URL

    @property
    def services_redis_url(self) -> str:
        return self.redis_url or DEFAULT_SERVICES_REDIS_URL

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"


def _absolute(path: Path | str) -> Path:
    path = Path(path).expanduser()
    return (path if path.is_absolute() else ROOT / path).resolve()


def env_raw(name: str, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(name, value), the value None when the variable is unset or blank (blank means "use the default")."""
    value = environ.get(name)
    return name, (None if value is None or value.strip() == "" else value)


def _parse(env_name: str, raw: str, type_name: Any) -> Any:
    type_name = type_name if isinstance(type_name, str) else type_name.__name__
    value = raw.strip()
    try:
        if type_name == "int":
            return int(value)
        if type_name == "float":
            return float(value)
    except ValueError as exc:
        raise LabConfigError(f"{env_name}={raw!r} is not a number") from exc
    if type_name == "bool":
        lowered = value.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise LabConfigError(f"{env_name}={raw!r} is not a boolean (use on/off)")
    if type_name == "Path":
        return Path(value)
    if env_name in {"LAB_PROFILE", "LAB_WINDOW_SET", "LAB_PROXY"}:
        return value.lower()
    return raw
