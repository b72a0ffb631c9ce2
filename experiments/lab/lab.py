"""The native lab: app, consumer, Prometheus, Alertmanager and the alert recorder as background processes.

State lives in files under LAB_DIR (one pid file and one log per component, plus `lab.json` recording the
profile and settings the lab was started with), so `up`, `status`, `restart` and `down` work from separate
commands and any of them can be repeated harmlessly.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from experiments.lab import backing, nginx, procs, render, replica
from experiments.lab.appserver import gunicorn_argv, manage_argv
from experiments.lab.config import DEFAULT_LOG_TAIL_LINES, MAX_APP_INSTANCES, ROOT, LabConfig
from experiments.lab.procs import Process, http_ok, port_in_use, tcp_ok
from monitoring.config import CONFIG

APP = "app"
WORKER = "worker"
PROMETHEUS = "prometheus"
ALERTMANAGER = "alertmanager"
WEBHOOK = "webhook"
PGBOUNCER = "pgbouncer"
REPLICA = "replica"
NGINX = "nginx"
POSTGRES_EXPORTER = "postgres-exporter"
REPLICA_EXPORTER = "replica-exporter"
REDIS_EXPORTER = "redis-exporter"
NGINX_EXPORTER = "nginx-exporter"
# mtail over nginx's access log: the edge's responses by status (prometheus/mtail/), for the availability SLI.
NGINX_LOG = "nginx-log"
# prometheus-process-exporter: CPU and memory of every other lab process, grouped by component (the dashboards'
# "CPU by process group"; the report's /proc sampler measures the same trees).
PROCESSES = "processes"
# APP is instance 1; APP_INSTANCES above 1 adds these, each its own gunicorn on its own ports.
APP_INSTANCES = (APP, *(f"{APP}-{n}" for n in range(2, MAX_APP_INSTANCES + 1)))
# Start order; stopping goes the other way. The app comes after its consumer so it never serves before it
# exists; nginx after the instances it balances.
COMPONENT_ORDER = (
    PGBOUNCER,
    REPLICA,
    WEBHOOK,
    ALERTMANAGER,
    PROMETHEUS,
    POSTGRES_EXPORTER,
    REPLICA_EXPORTER,
    REDIS_EXPORTER,
    WORKER,
    *APP_INSTANCES,
    NGINX,
    NGINX_EXPORTER,
    NGINX_LOG,
    # Last: its config names every other component's command line.
    PROCESSES,
)
RESTARTABLE = (APP, WORKER)
# Exporters' scrape targets, written for Prometheus's file_sd (prometheus/generate.py names the files).
EXPORTER_JOBS = {
    POSTGRES_EXPORTER: "postgres",
    REPLICA_EXPORTER: "postgres",
    REDIS_EXPORTER: "redis",
    NGINX_EXPORTER: "nginx",
    NGINX_LOG: CONFIG.jobs.edge,
    PROCESSES: CONFIG.jobs.processes,
}
MTAIL_PROGRAMS = ROOT / "prometheus" / "mtail"
POSTGRES_EXPORTER_QUERIES = ROOT / "prometheus" / "postgres-exporter-queries.yml"
# nginx starts new workers on SIGHUP within milliseconds; the old ones finish their requests (ours take < 1 s).
NGINX_RELOAD_S = 1.0
PORT_RELEASE_POLL_S = 0.1
APP_SETTINGS_COMPONENTS = (APP, WORKER)

# The lab measures the app, so it runs without DEBUG (which keeps every SQL query in memory).
LAB_APP_DEFAULTS = {"DEBUG": "off"}
MIGRATE_TIMEOUT_S = 600
READY_POLL_S = 0.25
# Debian packages that provide the binaries (`make system-deps` installs them).
BINARIES = {
    PROMETHEUS: "prometheus",
    ALERTMANAGER: "prometheus-alertmanager",
    PGBOUNCER: "pgbouncer",
    NGINX: "nginx",
    POSTGRES_EXPORTER: "prometheus-postgres-exporter",
    REPLICA_EXPORTER: "prometheus-postgres-exporter",
    REDIS_EXPORTER: "prometheus-redis-exporter",
    NGINX_EXPORTER: "prometheus-nginx-exporter",
    NGINX_LOG: "mtail",
    PROCESSES: "prometheus-process-exporter",
}
# process-exporter walks /proc at every scrape: per-thread and smaps figures would cost more than they tell here.
PROCESS_EXPORTER_FLAGS = ("-threads=false", "-gather-smaps=false")
# RE2 (process-exporter is Go) rejects escaped spaces: only the metacharacters are escaped.
_RE2_META = frozenset("\\.+*?()|[]{}^$")


class LabError(RuntimeError):
    """The lab could not do what was asked; the message says which component and why."""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: str  # running | unhealthy | crashed | stopped
    pid: int | None
    detail: str
    log_path: Path
    log_tail: str = ""

    @property
    def healthy(self) -> bool:
        return self.state == "running"

    def describe(self) -> str:
        pid = f" pid {self.pid}" if self.pid else ""
        line = f"{self.name:<13} {self.state:<9}{pid}  {self.detail}".rstrip()
        if self.log_tail and not self.healthy:
            indented = "\n".join(f"    | {row}" for row in self.log_tail.splitlines())
            line += f"\n    last lines of {self.log_path}:\n{indented}"
        return line


@dataclass
class _Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    probes: list[Callable[[], tuple[bool, str]]]
    ports: dict[str, int]
    user: str | None = None


@dataclass
class _State:
    profile: str
    pgbouncer: bool
    config: dict[str, Any]
    app_env: dict[str, dict[str, str]] = field(default_factory=dict)
    components: list[str] = field(default_factory=list)
    started_at: float = 0.0


class Lab:
    def __init__(self, config: LabConfig | None = None) -> None:
        self.config = config or LabConfig.from_env()
        self._children: dict[str, Process] = {}
        state = self._read_state()
        if state is not None and any(self.pid(name) for name in state.components):
            # A lab already runs in this LAB_DIR: address it on the ports and paths it was started with.
            self.config = replace(self._running_config(state), window_set=self.config.window_set)

    # --- where things are ---------------------------------------------------------------------------
    @property
    def lab_dir(self) -> Path:
        return self.config.lab_dir

    @property
    def app_url(self) -> str:
        """Where clients send requests: nginx with LAB_PROXY=nginx, else the app."""
        return self.config.url(self.config.public_port)

    def app_instance_names(self) -> list[str]:
        return list(APP_INSTANCES[: self.config.app_instances])

    @property
    def prometheus_url(self) -> str:
        return self.config.url(self.config.prometheus_port)

    @property
    def alertmanager_url(self) -> str:
        return self.config.url(self.config.alertmanager_port)

    @property
    def webhook_url(self) -> str:
        return self.config.url(self.config.webhook_port)

    @property
    def alerts_file(self) -> Path:
        return self.lab_dir / "alerts.jsonl"

    @property
    def faults_file(self) -> Path:
        return Path(self.config.faults_file or self.config.var_dir / "faults.json")

    @property
    def spans_file(self) -> Path:
        return Path(self.config.spans_file or self.config.var_dir / "spans.jsonl")

    @property
    def log_paths(self) -> dict[str, Path]:
        return {name: self._log(name) for name in self._expected_components()}

    def pid(self, component: str) -> int | None:
        process = self._process(component)
        return process.pid if process and process.alive() else None

    def _process(self, name: str) -> Process | None:
        """The component's process from its pid file; the one started here when it is that one (to reap it)."""
        record = Process.from_pid_file(self._pid_file(name), name=name, log_path=self._log(name))
        child = self._children.get(name)
        if (
            record is not None
            and child is not None
            and (child.pid, child.start_ticks) == (record.pid, record.start_ticks)
        ):
            return child
        return record

    def _log(self, name: str) -> Path:
        return self.lab_dir / f"{name}.log"

    def _pid_file(self, name: str) -> Path:
        return self.lab_dir / f"{name}.pid"

    # --- the app's environment ----------------------------------------------------------------------
    def env(self, component: str = APP, *, app_env: dict[str, str] | None = None) -> dict[str, str]:
        """The environment the lab gives the app or consumer; use it to run `manage.py` against the lab."""
        state = self._read_state()
        cfg = self._running_config(state)
        if app_env is None:
            app_env = (state.app_env.get(component) if state else None) or {}
        return self._app_environment(cfg, app_env)

    def manage(self, *args: str, check: bool = True, timeout_s: float | None = None) -> subprocess.CompletedProcess:
        """Run `manage.py <args>` with the lab's app environment (seed_demo, fault, queue_status ...)."""
        return subprocess.run(
            manage_argv(*args),
            env=self.env(APP),
            cwd=ROOT,
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def _app_environment(self, cfg: LabConfig, app_env: dict[str, str], *, direct_db: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        # The lab's processes get their own multiprocess directory (below); a parent's must not leak in.
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(
            {
                "VAR_DIR": str(cfg.var_dir),
                "APP_PORT": str(cfg.app_port),
                "APP_METRICS_PORT": str(cfg.app_metrics_port),
                "CONSUMER_METRICS_PORT": str(cfg.consumer_metrics_port),
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if cfg.profile == "embedded":
            for name in ("DATABASE_URL", "REDIS_URL", "DB_PGBOUNCER"):
                env.pop(name, None)
        else:
            database_url = cfg.services_database_url
            if cfg.pgbouncer and not direct_db:
                database_url = backing.pgbouncer_url(database_url=database_url, host=cfg.host, port=cfg.pgbouncer_port)
                env["DB_PGBOUNCER"] = "on"
            else:
                env.pop("DB_PGBOUNCER", None)
            env["DATABASE_URL"] = database_url
            env["REDIS_URL"] = cfg.services_redis_url
            env.setdefault("CACHE_URL", backing.redis_neighbour_db(cfg.services_redis_url))
        if cfg.proxy == "nginx":
            env["BEHIND_PROXY"] = "on"
        if cfg.profile == "services" and cfg.replica:
            env["DATABASE_REPLICA_URL"] = self._replica_spec(cfg).url(cfg.services_database_url)
        else:
            env.pop("DATABASE_REPLICA_URL", None)
        for key, value in LAB_APP_DEFAULTS.items():
            env.setdefault(key, value)
        env.update(app_env)
        return env

    # --- components ---------------------------------------------------------------------------------
    def _components(self, cfg: LabConfig, state: _State) -> dict[str, _Component]:
        host = cfg.host
        python = sys.executable
        found: dict[str, _Component] = {}
        if cfg.profile == "services" and cfg.pgbouncer:
            pg_dir = self._pgbouncer_dir()
            found[PGBOUNCER] = _Component(
                PGBOUNCER,
                [_binary(PGBOUNCER), str(pg_dir / "pgbouncer.ini")],
                dict(os.environ),
                [lambda: tcp_ok(host, cfg.pgbouncer_port)],
                {"PGBOUNCER_PORT": cfg.pgbouncer_port},
                user=cfg.pgbouncer_user if os.geteuid() == 0 else None,
            )
        if cfg.profile == "services" and cfg.replica:
            spec = self._replica_spec(cfg)
            found[REPLICA] = _Component(
                REPLICA,
                replica.replica_argv(spec),
                dict(os.environ),
                [lambda: tcp_ok(host, cfg.replica_port)],
                {"LAB_REPLICA_PORT": cfg.replica_port},
                user=replica.replica_process_user(spec),
            )
        if cfg.profile == "services" and cfg.exporters:
            found.update(self._exporters(cfg))
        found[WEBHOOK] = _Component(
            WEBHOOK,
            [
                python,
                "-m",
                "experiments.lab.webhook",
                "--host",
                host,
                "--port",
                str(cfg.webhook_port),
                "--out",
                str(self.alerts_file),
                # The one long-lived process of the lab's own: it keeps the logs capped while the lab runs.
                "--cap-logs",
                str(self.lab_dir),
                "--log-max-bytes",
                str(cfg.log_max_bytes),
            ],
            {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
            [lambda: http_ok(f"{cfg.url(cfg.webhook_port)}/healthz")],
            {"WEBHOOK_PORT": cfg.webhook_port},
        )
        found[ALERTMANAGER] = _Component(
            ALERTMANAGER,
            [
                _binary(ALERTMANAGER),
                f"--config.file={self.lab_dir / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={self.lab_dir / 'alertmanager' / 'data'}",
                f"--web.listen-address={host}:{cfg.alertmanager_port}",
                # No gossip: a single instance, and the default cluster port would clash between labs.
                "--cluster.listen-address=",
            ],
            dict(os.environ),
            [lambda: http_ok(f"{cfg.url(cfg.alertmanager_port)}/-/ready")],
            {"ALERTMANAGER_PORT": cfg.alertmanager_port},
        )
        found[PROMETHEUS] = _Component(
            PROMETHEUS,
            [
                _binary(PROMETHEUS),
                f"--config.file={self._prometheus_config_path()}",
                f"--storage.tsdb.path={self.lab_dir / 'prometheus' / 'data'}",
                *render.prometheus_storage_flags(cfg),
                f"--web.listen-address={host}:{cfg.prometheus_port}",
                "--web.enable-lifecycle",
            ],
            dict(os.environ),
            [lambda: http_ok(f"{cfg.url(cfg.prometheus_port)}/-/ready")],
            {"PROMETHEUS_PORT": cfg.prometheus_port},
        )
        worker_env = self._app_environment(cfg, state.app_env.get(WORKER, {}))
        found[WORKER] = _Component(
            WORKER,
            manage_argv("run_huey"),
            worker_env,
            [lambda: http_ok(f"{cfg.url(cfg.consumer_metrics_port)}/metrics")],
            {"CONSUMER_METRICS_PORT": cfg.consumer_metrics_port},
        )
        for n, name in enumerate(APP_INSTANCES[: cfg.app_instances], start=1):
            app_port, metrics_port = cfg.instance_ports(n)
            app_env = self._app_environment(cfg, state.app_env.get(APP, {}))
            app_env.update({"APP_PORT": str(app_port), "APP_METRICS_PORT": str(metrics_port)})
            app_env["PROMETHEUS_MULTIPROC_DIR"] = str(self.lab_dir / "metrics-multiproc" / name)
            found[name] = _Component(
                name,
                gunicorn_argv(bind=f"{host}:{app_port}"),
                app_env,
                [
                    lambda port=app_port: http_ok(f"{cfg.url(port)}/readyz"),
                    lambda port=metrics_port: http_ok(f"{cfg.url(port)}/metrics"),
                ],
                {"APP_PORT": app_port, "APP_METRICS_PORT": metrics_port},
            )
        if cfg.proxy == "nginx":
            found[NGINX] = _Component(
                NGINX,
                nginx.nginx_argv(self._nginx_spec(cfg).run_dir / "nginx.conf"),
                dict(os.environ),
                [
                    lambda: http_ok(f"{cfg.url(cfg.proxy_port)}/healthz"),
                    lambda: http_ok(f"{cfg.url(cfg.nginx_status_port)}/stub_status"),
                ],
                {"LAB_PROXY_PORT": cfg.proxy_port, "NGINX_STATUS_PORT": cfg.nginx_status_port},
            )
            if cfg.profile == "services" and cfg.exporters:
                found[NGINX_EXPORTER] = _Component(
                    NGINX_EXPORTER,
                    [
                        _binary(NGINX_EXPORTER),
                        "-web.listen-address",
                        f"{host}:{cfg.nginx_exporter_port}",
                        "-nginx.scrape-uri",
                        f"{cfg.url(cfg.nginx_status_port)}/stub_status",
                    ],
                    dict(os.environ),
                    [lambda: http_ok(f"{cfg.url(cfg.nginx_exporter_port)}/metrics")],
                    {"NGINX_EXPORTER_PORT": cfg.nginx_exporter_port},
                )
            # On both profiles: the availability SLI reads it whenever nginx is the edge (slo/spec.py). mtail
            # starts at the log's end, so earlier runs' lines are not counted again.
            found[NGINX_LOG] = _Component(
                NGINX_LOG,
                [
                    _binary(NGINX_LOG),
                    "--progs",
                    str(MTAIL_PROGRAMS),
                    "--logs",
                    str(self._nginx_spec(cfg).run_dir / "access.log"),
                    "--address",
                    host,
                    "--port",
                    str(cfg.mtail_port),
                    "--emit_prog_label=false",
                    "--logtostderr",
                ],
                dict(os.environ),
                [lambda: http_ok(f"{cfg.url(cfg.mtail_port)}/metrics")],
                {"MTAIL_PORT": cfg.mtail_port},
            )
        found[PROCESSES] = _Component(
            PROCESSES,
            [
                _binary(PROCESSES),
                "-config.path",
                str(self._process_groups_path()),
                "-web.listen-address",
                f"{host}:{cfg.process_exporter_port}",
                *PROCESS_EXPORTER_FLAGS,
            ],
            dict(os.environ),
            [lambda: http_ok(f"{cfg.url(cfg.process_exporter_port)}/metrics")],
            {"PROCESS_EXPORTER_PORT": cfg.process_exporter_port},
        )
        return {name: found[name] for name in COMPONENT_ORDER if name in found}

    def _process_groups_path(self) -> Path:
        return self.lab_dir / "processes" / "process-exporter.yml"

    def _write_process_groups(self, components: dict[str, _Component]) -> None:
        """process-exporter's groups: one per lab component, matched by its own command line (its ports and this
        lab's paths make it this lab's, not another lab's on the same machine). Children are tracked with their
        parent, so nginx's and gunicorn's workers count with their master."""
        groups = [
            {"name": name, "cmdline": [_re2_literal(" ".join(component.argv[1:]))]}
            for name, component in components.items()
            if name != PROCESSES and len(component.argv) > 1
        ]
        render.write_yaml(self._process_groups_path(), {"process_names": groups})

    def _exporters(self, cfg: LabConfig) -> dict[str, _Component]:
        """prometheus-postgres-exporter for the primary (and one for the replica) and prometheus-redis-exporter."""
        host = cfg.host

        def postgres_exporter(name: str, port: int, database_url: str) -> _Component:
            return _Component(
                name,
                [
                    _binary(name),
                    f"--web.listen-address={host}:{port}",
                    f"--extend.query-path={POSTGRES_EXPORTER_QUERIES}",
                ],
                {**os.environ, "DATA_SOURCE_NAME": _exporter_dsn(database_url)},
                [lambda: http_ok(f"{cfg.url(port)}/metrics")],
                {f"{name.replace('-', '_').upper()}_PORT": port},
            )

        redis = urlparse(cfg.services_redis_url)
        found = {
            POSTGRES_EXPORTER: postgres_exporter(
                POSTGRES_EXPORTER, cfg.postgres_exporter_port, cfg.services_database_url
            )
        }
        if cfg.replica:
            replica_url = self._replica_spec(cfg).url(cfg.services_database_url)
            found[REPLICA_EXPORTER] = postgres_exporter(REPLICA_EXPORTER, cfg.replica_exporter_port, replica_url)
        found[REDIS_EXPORTER] = _Component(
            REDIS_EXPORTER,
            [
                _binary(REDIS_EXPORTER),
                f"--web.listen-address={host}:{cfg.redis_exporter_port}",
                f"--redis.addr=redis://{redis.hostname or '127.0.0.1'}:{redis.port or 6379}",
            ],
            dict(os.environ),
            [lambda: http_ok(f"{cfg.url(cfg.redis_exporter_port)}/metrics")],
            {"REDIS_EXPORTER_PORT": cfg.redis_exporter_port},
        )
        return found

    def replica_preflight(self) -> None:
        """Raise LabError now, naming the fix, when a replica could not be made of the services profile's primary:
        an experiment whose last step needs one should not find out after its first twenty minutes."""
        cfg = self.config.with_profile("services", replica=True)
        try:
            replica.replica_check_primary(self._replica_spec(cfg))
        except replica.ReplicaError as exc:
            raise LabError(f"the read replica cannot be made: {exc}") from exc

    def _replica_spec(self, cfg: LabConfig) -> replica.ReplicaSpec:
        return replica.ReplicaSpec(
            primary_url=cfg.services_database_url,
            data_dir=self.lab_dir / "replica",
            port=cfg.replica_port,
            host=cfg.host,
            run_as=cfg.pgbouncer_user,
        )

    def _nginx_spec(self, cfg: LabConfig) -> nginx.NginxSpec:
        return nginx.NginxSpec(
            listen_port=cfg.proxy_port,
            upstream_ports=tuple(cfg.instance_ports(n)[0] for n in range(1, cfg.app_instances + 1)),
            static_root=cfg.var_dir / "static",
            media_root=cfg.var_dir / "media",
            run_dir=self.lab_dir / "nginx",
            host=cfg.host,
            status_port=cfg.nginx_status_port,
        )

    def _expected_components(self) -> list[str]:
        state = self._read_state()
        if state and state.components:
            return state.components
        cfg = self.config
        return list(self._components(cfg, _State(cfg.profile, cfg.pgbouncer, _config_dict(cfg))))

    # --- up / down / restart ------------------------------------------------------------------------
    def up(
        self,
        *,
        profile: str | None = None,
        app_env: dict[str, str] | None = None,
        pgbouncer: bool | None = None,
        proxy: str | None = None,
        app_instances: int | None = None,
        replica: bool | None = None,
    ) -> dict[str, ComponentStatus]:
        """Start whatever is not running and wait until every component is ready.

        Running components are left alone (use `restart` to change the app's settings); starting a running
        lab again is a no-op. Raises LabError naming the components that did not become ready.
        """
        with self._lock():
            previous = self._read_state()
            running = [name for name in COMPONENT_ORDER if self.pid(name)]
            asked = (profile, pgbouncer, proxy, app_instances, replica)
            if running and previous and all(value is None for value in asked):
                # Join the running lab on its ports; the rule window set is the caller's (reloaded if it differs).
                cfg = replace(self._running_config(previous), window_set=self.config.window_set)
            else:
                try:
                    cfg = self.config.with_profile(
                        profile, pgbouncer=pgbouncer, proxy=proxy, app_instances=app_instances, replica=replica
                    )
                except ValueError as exc:
                    raise LabError(str(exc)) from exc
            before = self._running_config(previous) if previous else None
            if running and before and before.layout != cfg.layout:
                raise LabError(
                    f"the lab is running as {before.describe_layout()} ({', '.join(running)}), not "
                    f"{cfg.describe_layout()}; run `down` first"
                )
            if cfg.pgbouncer and cfg.profile != "services":
                raise LabError("pgbouncer sits in front of PostgreSQL: use it with --profile services")
            if cfg.replica and cfg.profile != "services":
                raise LabError("the read replica is a PostgreSQL replica: use it with --profile services")
            self.config = cfg
            settings = dict(app_env or {})
            if running and previous:
                state = replace(previous, config=_config_dict(cfg))
            else:
                state = _State(
                    profile=cfg.profile,
                    pgbouncer=cfg.pgbouncer,
                    config=_config_dict(cfg),
                    app_env={name: settings for name in APP_SETTINGS_COMPONENTS},
                    started_at=time.time(),
                )
            components = self._components(cfg, state)
            state.components = list(components)
            self._ensure_binaries(components)
            changed = self._write_configs(cfg)
            self._write_process_groups(components)
            for name in changed:
                if self.pid(name):
                    self._reload(name, cfg)
            if cfg.profile == "services":
                self._prepare_services(cfg, replica_running=bool(self.pid(REPLICA)))
            self._write_state(state)
            to_start = [component for name, component in components.items() if not self.pid(name)]
            self._ports_check(to_start)
            for component in to_start:
                if component.name in (WORKER, APP) and not (self.pid(WORKER) or self.pid(APP)):
                    self._migrate(cfg, state)
                    # Static files for the app (WhiteNoise) or nginx to serve.
                    self._collectstatic(cfg, state)
                self._start(component)
                if component.name in (REPLICA, NGINX):
                    # The app reads from the replica at once, and prometheus-nginx-exporter (0.11) exits when its
                    # first stub_status read is refused: wait until each answers before starting what follows.
                    self._wait_ready([component.name], cfg.ready_timeout_s)
            return self._wait_ready(list(components), cfg.ready_timeout_s)

    def down(self) -> list[str]:
        """Stop every component (app first). Returns the names that were running. Stopping twice is harmless."""
        stopped = []
        with self._lock():
            for name in reversed(COMPONENT_ORDER):
                pid_file = self._pid_file(name)
                process = self._process(name)
                self._children.pop(name, None)
                if process is None:
                    continue
                if process.alive() or procs.group_members(process.pid):
                    process.stop(timeout_s=self.config.stop_timeout_s)
                    stopped.append(name)
                    _note(self._log(name), "stopped (SIGKILL after timeout)" if process.killed else "stopped")
                pid_file.unlink(missing_ok=True)
        return stopped

    def restart(self, component: str, *, app_env: dict[str, str] | None = None) -> ComponentStatus:
        """Restart the app or the consumer; `app_env`, when given, replaces that component's settings."""
        if component not in RESTARTABLE:
            raise LabError(f"only {' and '.join(RESTARTABLE)} can be restarted, not {component!r}")
        with self._lock():
            state = self._read_state()
            if state is None:
                raise LabError("the lab is not running; run `up` first")
            cfg = self._running_config(state)
            self.config = cfg
            if app_env is not None:
                state.app_env[component] = dict(app_env)
                self._write_state(state)
            names = self.app_instance_names() if component == APP else [component]
            components = self._components(cfg, state)
            statuses: dict[str, ComponentStatus] = {}
            # One instance at a time: with nginx in front, the others serve meanwhile (a rolling restart).
            for name in names:
                statuses.update(self._restart_one(components[name], cfg))
            return statuses[component]

    def rolling_restart(self, *, careless: bool = False) -> float:
        """Restart every app instance: one at a time, each drained by a graceful stop (SIGTERM: gunicorn stops
        accepting and finishes its requests) while nginx sends traffic to the others; or, `careless`, SIGKILL
        all of them at once and start them again. Returns the seconds it took."""
        started = time.monotonic()
        with self._lock():
            state = self._read_state()
            if state is None:
                raise LabError("the lab is not running; run `up` first")
            cfg = self._running_config(state)
            components = self._components(cfg, state)
            names = self.app_instance_names()
            if not careless:
                for n, name in enumerate(names, start=1):
                    # Drain: nginx stops sending it requests and closes its own keep-alive connections to it
                    # (a reload), so no request races the instance's shutdown; then stop it gracefully.
                    self._nginx_rotation(cfg, down=(cfg.instance_ports(n)[0],))
                    self._restart_one(components[name], cfg)
                self._nginx_rotation(cfg, down=())
                return time.monotonic() - started
            for name in names:
                process = self._process(name)
                self._children.pop(name, None)
                if process is not None and process.alive():
                    process.stop(timeout_s=cfg.stop_timeout_s, sig=signal.SIGKILL)
                    _note(self._log(name), "SIGKILL (careless deploy)")
                self._pid_file(name).unlink(missing_ok=True)
            for name in names:
                self._wait_ports_free(components[name], cfg.stop_timeout_s)
                self._start(components[name])
            self._wait_ready(names, cfg.ready_timeout_s)
        return time.monotonic() - started

    def _nginx_rotation(self, cfg: LabConfig, *, down: tuple[int, ...]) -> None:
        """Re-render nginx's upstream with `down` out of the rotation and reload it (SIGHUP: new workers take
        new requests, old ones finish theirs and close their connections)."""
        process = self._process(NGINX)
        if cfg.proxy != "nginx" or process is None or not process.alive():
            return
        nginx.nginx_write(replace(self._nginx_spec(cfg), down_ports=down))
        os.kill(process.pid, signal.SIGHUP)
        _note(self._log(NGINX), f"reloaded; out of the rotation: {', '.join(map(str, down)) or 'none'}")
        time.sleep(NGINX_RELOAD_S)

    def _restart_one(self, target: _Component, cfg: LabConfig) -> dict[str, ComponentStatus]:
        process = self._process(target.name)
        self._children.pop(target.name, None)
        if process is not None:
            process.stop(timeout_s=cfg.stop_timeout_s)
            self._pid_file(target.name).unlink(missing_ok=True)
            _note(self._log(target.name), "stopped for restart")
        self._wait_ports_free(target, cfg.stop_timeout_s)
        self._start(target)
        return self._wait_ready([target.name], cfg.ready_timeout_s)

    def reload_prometheus(self) -> None:
        """Re-render the configs and make Prometheus and Alertmanager re-read them (after `make slo`)."""
        cfg = self._running_config(self._read_state())
        self._write_configs(cfg)
        for name in (PROMETHEUS, ALERTMANAGER):
            if self.pid(name):
                self._reload(name, cfg)

    def _reload(self, name: str, cfg: LabConfig) -> None:
        port = cfg.prometheus_port if name == PROMETHEUS else cfg.alertmanager_port
        request = urllib.request.Request(f"{cfg.url(port)}/-/reload", method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - our own Prometheus/Alertmanager
                pass
        except (urllib.error.URLError, OSError) as exc:
            raise LabError(f"{name} did not reload its configuration: {exc}; see {self._log(name)}") from exc
        _note(self._log(name), "configuration reloaded")

    # --- status -------------------------------------------------------------------------------------
    def status(self) -> dict[str, ComponentStatus]:
        state = self._read_state()
        cfg = self._running_config(state)
        components = self._components(cfg, state or _State(cfg.profile, cfg.pgbouncer, _config_dict(cfg)))
        return {name: self._status_of(components[name]) for name in self._expected_components() if name in components}

    def _status_of(self, component: _Component) -> ComponentStatus:
        name = component.name
        log = self._log(name)
        record = self._process(name)
        if record is None:
            return ComponentStatus(name, "stopped", None, "not running", log)
        if not record.alive():
            code = record.returncode
            exit_note = f" with exit code {code}" if code is not None else ""
            detail = f"crashed: pid {record.pid} exited{exit_note}"
            return ComponentStatus(name, "crashed", None, detail, log, procs.tail(log, DEFAULT_LOG_TAIL_LINES))
        problems = [detail for ok, detail in (probe() for probe in component.probes) if not ok]
        if problems:
            return ComponentStatus(
                name, "unhealthy", record.pid, "; ".join(problems), log, procs.tail(log, DEFAULT_LOG_TAIL_LINES)
            )
        ports = ", ".join(f"{key}={port}" for key, port in component.ports.items())
        return ComponentStatus(name, "running", record.pid, ports, log)

    def _wait_ready(self, names: list[str], timeout_s: float) -> dict[str, ComponentStatus]:
        deadline = time.monotonic() + timeout_s
        while True:
            statuses = self.status()
            pending = [statuses[name] for name in names if name in statuses and not statuses[name].healthy]
            crashed = [s for s in pending if s.state in {"crashed", "stopped"}]
            if not pending:
                return statuses
            if crashed or time.monotonic() > deadline:
                failed = crashed or pending
                report = "\n".join(s.describe() for s in failed)
                raise LabError(f"{', '.join(s.name for s in failed)} not ready after start:\n{report}")
            time.sleep(READY_POLL_S)

    # --- helpers ------------------------------------------------------------------------------------
    def _ports_check(self, components: list[_Component]) -> None:
        busy = [
            f"{component.name}: port {port} ({env_name})"
            for component in components
            for env_name, port in component.ports.items()
            if port_in_use(self.config.host, port)
        ]
        if busy:
            raise LabError(
                "ports already in use by other processes: "
                + "; ".join(busy)
                + ". Stop them, or choose other ports with the variables named."
            )

    def _wait_ports_free(self, component: _Component, timeout_s: float) -> None:
        # The kernel can hold a just-closed listener for a moment after its process is gone (seen with the
        # metrics port right after a restart); wait for it here rather than make every caller retry.
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not any(port_in_use(self.config.host, port) for port in component.ports.values()):
                return
            time.sleep(PORT_RELEASE_POLL_S)

    def _start(self, component: _Component) -> None:
        self._ports_check([component])
        self._children[component.name] = procs.start(
            component.argv,
            name=component.name,
            pid_file=self._pid_file(component.name),
            log_path=self._log(component.name),
            env=component.env,
            cwd=ROOT,
            user=component.user,
            banner=True,
            log_max_bytes=self.config.log_max_bytes,
        )

    def _migrate(self, cfg: LabConfig, state: _State) -> None:
        log = self._log("migrate")
        procs.log_cap(log, cfg.log_max_bytes)
        env = self._app_environment(cfg, state.app_env.get(APP, {}), direct_db=True)
        with log.open("ab") as handle:
            handle.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} migrate\n".encode())
            handle.flush()
            result = subprocess.run(
                manage_argv("migrate", "--noinput"),
                env=env,
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=MIGRATE_TIMEOUT_S,
                check=False,
            )
        if result.returncode != 0:
            raise LabError(f"migrate failed (exit {result.returncode}); see {log}:\n{procs.tail(log, 30)}")

    def _prepare_services(self, cfg: LabConfig, *, replica_running: bool) -> None:
        try:
            backing.redis_ensure(url=cfg.services_redis_url)
            if backing.database_ensure(url=cfg.services_database_url):
                _note(self._log("migrate"), f"created database for {cfg.services_database_url}")
        except backing.ServiceUnavailable as exc:
            raise LabError(f"services profile: {exc}") from exc
        if cfg.pgbouncer:
            self._write_pgbouncer_config(cfg)
        if cfg.replica and not replica_running:
            spec = self._replica_spec(cfg)
            # A fresh clone every time it starts: the primary keeps no WAL for a replica that was away.
            shutil.rmtree(spec.data_dir, ignore_errors=True)
            try:
                replica.replica_create(spec, log=self._log(REPLICA))
            except replica.ReplicaError as exc:
                raise LabError(f"read replica: {exc}") from exc
            _note(self._log(REPLICA), f"cloned {cfg.services_database_url} with pg_basebackup into {spec.data_dir}")

    def _collectstatic(self, cfg: LabConfig, state: _State) -> None:
        """nginx serves the static files from VAR_DIR/static: collect them first."""
        result = subprocess.run(
            manage_argv("collectstatic", "--noinput", "-v0"),
            env=self._app_environment(cfg, state.app_env.get(APP, {}), direct_db=True),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=MIGRATE_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise LabError(f"collectstatic failed (exit {result.returncode}):\n{result.stderr[-2000:]}")

    def _pgbouncer_dir(self) -> Path:
        return self.lab_dir / "pgbouncer"

    def _write_pgbouncer_config(self, cfg: LabConfig) -> None:
        directory = self._pgbouncer_dir()
        directory.mkdir(parents=True, exist_ok=True)
        auth_file = directory / "userlist.txt"
        auth_file.write_text(render.pgbouncer_userlist(cfg))
        (directory / "pgbouncer.ini").write_text(render.pgbouncer_ini(cfg, auth_file=auth_file))
        if os.geteuid() == 0:
            # pgbouncer refuses to run as root; the user it runs as must read its config on every path step.
            shutil.chown(directory, user=cfg.pgbouncer_user)
            for path in directory.iterdir():
                shutil.chown(path, user=cfg.pgbouncer_user)
            for parent in [self.lab_dir, *self.lab_dir.parents]:
                if not os.stat(parent).st_mode & 0o001:
                    raise LabError(
                        f"pgbouncer runs as {cfg.pgbouncer_user!r} and cannot reach {directory}: {parent} is not "
                        "world-traversable; choose a LAB_DIR under a readable path"
                    )

    def _prometheus_config_path(self) -> Path:
        return self.lab_dir / "prometheus" / "prometheus.yml"

    def _write_configs(self, cfg: LabConfig) -> list[str]:
        """Render the Prometheus and Alertmanager configs; returns the components whose config changed."""
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        rendered = {
            PROMETHEUS: (self._prometheus_config_path(), render.prometheus_config(cfg)),
            ALERTMANAGER: (self.lab_dir / "alertmanager" / "alertmanager.yml", render.alertmanager_config(cfg)),
        }
        changed = []
        for name, (path, data) in rendered.items():
            before = path.read_text() if path.exists() else None
            render.write_yaml(path, data)
            if path.read_text() != before:
                changed.append(name)
        for name in APP_INSTANCES[: cfg.app_instances]:
            (self.lab_dir / "metrics-multiproc" / name).mkdir(parents=True, exist_ok=True)
        self._write_targets(cfg)
        if cfg.proxy == "nginx":
            nginx.nginx_write(self._nginx_spec(cfg))
        return changed

    def _write_targets(self, cfg: LabConfig) -> None:
        """file_sd target lists: app instances beyond the first, and the exporters this layout runs."""
        targets_dir = self._prometheus_config_path().parent / "targets"
        targets_dir.mkdir(parents=True, exist_ok=True)
        extra = [f"{cfg.host}:{cfg.instance_ports(n)[1]}" for n in range(2, cfg.app_instances + 1)]
        exporters = cfg.profile == "services" and cfg.exporters
        ports = {
            POSTGRES_EXPORTER: cfg.postgres_exporter_port if exporters else None,
            REPLICA_EXPORTER: cfg.replica_exporter_port if exporters and cfg.replica else None,
            REDIS_EXPORTER: cfg.redis_exporter_port if exporters else None,
            NGINX_EXPORTER: cfg.nginx_exporter_port if exporters and cfg.proxy == "nginx" else None,
            NGINX_LOG: cfg.mtail_port if cfg.proxy == "nginx" else None,
            PROCESSES: cfg.process_exporter_port,
        }
        lists: dict[str, list[str]] = {"chowist-app": extra}
        for name, job in EXPORTER_JOBS.items():
            lists.setdefault(job, [])
            if ports[name]:
                lists[job].append(f"{cfg.host}:{ports[name]}")
        for job, targets in lists.items():
            document = [{"targets": targets}] if targets else []
            path = targets_dir / f"{job}.json"
            text = json.dumps(document, indent=2) + "\n"
            if not path.exists() or path.read_text() != text:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(text)
                tmp.replace(path)

    def _ensure_binaries(self, components: dict[str, _Component]) -> None:
        missing = [name for name in BINARIES if name in components and not _which(BINARIES[name])]
        if not missing:
            return
        # `make system-deps` installs the Debian packages when apt-get is there and we are root.
        result = subprocess.run(["make", "-C", str(ROOT), "system-deps"], capture_output=True, text=True, check=False)
        still = [BINARIES[name] for name in missing if not _which(BINARIES[name])]
        if still:
            raise LabError(
                f"missing commands: {', '.join(still)}. Install the Debian packages "
                f"(sudo apt-get install --no-install-recommends prometheus prometheus-alertmanager pgbouncer)."
                f"\n{result.stdout}{result.stderr}".rstrip()
            )
        for component in components.values():
            if component.name in missing:
                component.argv[0] = _binary(component.name)

    def _running_config(self, state: _State | None) -> LabConfig:
        if state is None:
            return self.config
        known = {f.name for f in fields(LabConfig)}
        values = {key: value for key, value in state.config.items() if key in known}
        return LabConfig(**values)

    def _state_file(self) -> Path:
        return self.lab_dir / "lab.json"

    def _read_state(self) -> _State | None:
        try:
            data = json.loads(self._state_file().read_text())
            return _State(**data)
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _write_state(self, state: _State) -> None:
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2, sort_keys=True))
        tmp.replace(self._state_file())

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One `up`/`down`/`restart` at a time per LAB_DIR."""
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        with (self.lab_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _config_dict(cfg: LabConfig) -> dict[str, Any]:
    return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(cfg).items()}


def _re2_literal(text: str) -> str:
    """`text` as an RE2 pattern matching it literally."""
    return "".join("\\" + c if c in _RE2_META else c for c in text)


def _which(command: str) -> str | None:
    return shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin")


def _binary(component: str) -> str:
    return _which(BINARIES[component]) or BINARIES[component]


def _exporter_dsn(database_url: str) -> str:
    """A libpq URL for the exporter (it speaks postgresql://, and the lab's servers have no TLS)."""
    parsed = urlparse(database_url)
    return urlunparse(parsed._replace(scheme="postgresql", query="sslmode=disable"))


def _note(log: Path, message: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        handle.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}\n")
