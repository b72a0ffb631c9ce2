"""The lab's defaults, in one place, read from the environment.

Every port, path and timeout the native lab uses is a field of `LabConfig`; `LabConfig.from_env()` reads the
environment once and keyword overrides win (tests pass free ports and a temporary LAB_DIR).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from envconfig import EnvError, env_bool, env_choice, env_float, env_int, env_path, env_str
from monitoring.config import CONFIG, LAB, WINDOW_SETS

ROOT = Path(__file__).resolve().parents[2]

PROFILES = ("embedded", "services")
PROXIES = ("none", "nginx")
# nginx is the front door by default: it holds the clients' connections, and only it sees the whole wait (the
# latency SLI is measured there, issue 21). `none` (PROXY=off) keeps the direct path, for experiments about it.
DEFAULT_PROXY = "nginx"

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
DEFAULT_NGINX_EXPORTER_PORT = CONFIG.ports.nginx_exporter
DEFAULT_MTAIL_PORT = CONFIG.ports.mtail
DEFAULT_PROCESS_EXPORTER_PORT = CONFIG.ports.process_exporter
DEFAULT_SERVICES_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chowist_lab"
DEFAULT_SERVICES_REDIS_URL = "redis://127.0.0.1:6379/1"
# Readiness covers migrate-free start-up of gunicorn, the consumer and Prometheus on a busy 2-core box.
DEFAULT_READY_TIMEOUT_S = 60.0
# gunicorn's graceful stop waits for in-flight requests; longer than this means something is stuck.
DEFAULT_STOP_TIMEOUT_S = 15.0
DEFAULT_LOG_TAIL_LINES = 20
# Prometheus's TSDB block range (--storage.tsdb.min-block-duration; 2 h by default), in minutes. The head
# m-maps a series' chunk to disk when it reaches the block boundary or holds 120 samples (10 min at 5 s scrapes),
# and its chunk writer allocates its buffers the first time: a one-off ~8 MiB step (+11 %) in Prometheus's RSS,
# ten minutes into every run with 2 h blocks, i.e. inside any measurement. Compressed like the SLO windows (which
# shorten 2 h to 10 min), to 5 min: the first boundary comes within five minutes of `up`, before an experiment
# measures, and the head is cut into blocks and truncated every 5 min as a production head is every 2 h.
DEFAULT_PROMETHEUS_BLOCK_MINUTES = 5
MAX_PROMETHEUS_BLOCK_MINUTES = 120


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
    # nginx in front of the app instances (both profiles, the default): clients then use proxy_port.
    proxy: str = DEFAULT_PROXY
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
    # With nginx (either profile): mtail serving nginx's responses by status (the availability SLI at the edge).
    mtail_port: int = DEFAULT_MTAIL_PORT
    # prometheus-process-exporter (both profiles): every lab process's CPU by component, for the dashboards.
    process_exporter_port: int = DEFAULT_PROCESS_EXPORTER_PORT
    database_url: str = ""
    redis_url: str = ""
    # Where the app writes its fault flags and spans when FAULTS_FILE / OTEL_SPANS_FILE are set ("": under var_dir).
    faults_file: str = ""
    spans_file: str = ""
    window_set: str = LAB
    prometheus_block_minutes: int = DEFAULT_PROMETHEUS_BLOCK_MINUTES
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S
    # Each log in lab_dir is kept under this size (MiB; 0: never capped): past it, it is copied to <log>.1 and
    # emptied, at every start and, while the lab runs, by the webhook process (experiments/lab/procs.log_cap).
    log_max_mb: int = 50
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise LabConfigError(f"profile {self.profile!r} must be one of {', '.join(PROFILES)}")
        if self.window_set not in WINDOW_SETS:
            raise LabConfigError(f"window set {self.window_set!r} must be one of {', '.join(WINDOW_SETS)}")
        if not 1 <= self.prometheus_block_minutes <= MAX_PROMETHEUS_BLOCK_MINUTES:
            raise LabConfigError(
                f"LAB_PROMETHEUS_BLOCK_MINUTES={self.prometheus_block_minutes} must be between 1 and"
                f" {MAX_PROMETHEUS_BLOCK_MINUTES}"
            )
        if self.ready_timeout_s <= 0 or self.stop_timeout_s <= 0:
            raise LabConfigError("LAB_READY_TIMEOUT_S and LAB_STOP_TIMEOUT_S must be positive")
        if self.log_max_mb < 0:
            raise LabConfigError(f"LAB_LOG_MAX_MB={self.log_max_mb} must be 0 (never capped) or a size in MiB")
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
            "mtail_port": self.proxy == "nginx",
        }.get(name, True)

    def instance_ports(self, n: int) -> tuple[int, int]:
        """(app port, metrics port) of app instance `n` (1 is APP_PORT / APP_METRICS_PORT)."""
        if n == 1:
            return self.app_port, self.app_metrics_port
        return self.app_port + n - 1, self.app_metrics_port + INSTANCE_METRICS_OFFSET + n - 1

    @property
    def log_max_bytes(self) -> int:
        return self.log_max_mb * 1024 * 1024

    @property
    def public_port(self) -> int:
        """Where clients send requests: nginx when it runs, else the (single) app instance."""
        return self.proxy_port if self.proxy == "nginx" else self.app_port

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LabConfig:
        """Defaults, then the environment, then `overrides` (field names, e.g. app_port=18000)."""
        d = {f.name: f.default for f in fields(cls)}
        unknown = set(overrides) - set(d)
        if unknown:
            raise LabConfigError(f"unknown LabConfig fields: {', '.join(sorted(unknown))}")
        e: dict[str, Any] = {"environ": environ}
        try:
            values = {
                "lab_dir": env_path("LAB_DIR", d["lab_dir"], base=ROOT, **e),
                "var_dir": env_path("VAR_DIR", d["var_dir"], base=ROOT, **e),
                "profile": env_choice("LAB_PROFILE", d["profile"], PROFILES, **e),
                "app_port": env_int("APP_PORT", d["app_port"], **e),
                "app_metrics_port": env_int("APP_METRICS_PORT", d["app_metrics_port"], **e),
                "consumer_metrics_port": env_int("CONSUMER_METRICS_PORT", d["consumer_metrics_port"], **e),
                "prometheus_port": env_int("PROMETHEUS_PORT", d["prometheus_port"], **e),
                "alertmanager_port": env_int("ALERTMANAGER_PORT", d["alertmanager_port"], **e),
                "webhook_port": env_int("WEBHOOK_PORT", d["webhook_port"], **e),
                "pgbouncer_port": env_int("PGBOUNCER_PORT", d["pgbouncer_port"], **e),
                "pgbouncer": env_bool("LAB_PGBOUNCER", d["pgbouncer"], **e),
                "pgbouncer_user": env_str("PGBOUNCER_USER", d["pgbouncer_user"], **e),
                "proxy": _proxy_choice(env_str("LAB_PROXY", d["proxy"], **e)),
                "proxy_port": env_int("LAB_PROXY_PORT", d["proxy_port"], **e),
                "nginx_status_port": env_int("NGINX_STATUS_PORT", d["nginx_status_port"], **e),
                "app_instances": env_int("APP_INSTANCES", d["app_instances"], **e),
                "replica": env_bool("LAB_REPLICA", d["replica"], **e),
                "replica_port": env_int("LAB_REPLICA_PORT", d["replica_port"], **e),
                "exporters": env_bool("LAB_EXPORTERS", d["exporters"], **e),
                "postgres_exporter_port": env_int("POSTGRES_EXPORTER_PORT", d["postgres_exporter_port"], **e),
                "replica_exporter_port": env_int("REPLICA_EXPORTER_PORT", d["replica_exporter_port"], **e),
                "redis_exporter_port": env_int("REDIS_EXPORTER_PORT", d["redis_exporter_port"], **e),
                "nginx_exporter_port": env_int("NGINX_EXPORTER_PORT", d["nginx_exporter_port"], **e),
                "mtail_port": env_int("MTAIL_PORT", d["mtail_port"], **e),
                "process_exporter_port": env_int("PROCESS_EXPORTER_PORT", d["process_exporter_port"], **e),
                "database_url": env_str("DATABASE_URL", d["database_url"], **e),
                "redis_url": env_str("REDIS_URL", d["redis_url"], **e),
                "faults_file": env_str("FAULTS_FILE", d["faults_file"], **e),
                "spans_file": env_str("OTEL_SPANS_FILE", d["spans_file"], **e),
                "window_set": env_choice("LAB_WINDOW_SET", d["window_set"], WINDOW_SETS, **e),
                "prometheus_block_minutes": env_int("LAB_PROMETHEUS_BLOCK_MINUTES", d["prometheus_block_minutes"], **e),
                "ready_timeout_s": env_float("LAB_READY_TIMEOUT_S", d["ready_timeout_s"], **e),
                "stop_timeout_s": env_float("LAB_STOP_TIMEOUT_S", d["stop_timeout_s"], **e),
                "log_max_mb": env_int("LAB_LOG_MAX_MB", d["log_max_mb"], **e),
            }
        except EnvError as exc:
            raise LabConfigError(str(exc)) from exc
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


# PROXY=off in the Makefile, LAB_PROXY=off in the environment: the direct path, as `none` says it.
_PROXY_OFF = frozenset({"off", "no", "false", "0", "none", "direct"})


def _proxy_choice(value: str) -> str:
    """LAB_PROXY as one of PROXIES: `off` and its synonyms mean `none`."""
    value = value.strip().lower()
    if value in _PROXY_OFF:
        return "none"
    if value not in PROXIES:
        raise EnvError(f"LAB_PROXY={value!r} must be one of {', '.join(PROXIES)} (or off)")
    return value


def _absolute(path: Path | str) -> Path:
    path = Path(path).expanduser()
    return (path if path.is_absolute() else ROOT / path).resolve()
