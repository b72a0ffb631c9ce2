"""The app's own processes on the launcher (`procs`): gunicorn under gunicorn.conf.py, the consumer, the dev server.

Used by the lab, the benchmarks and the tests. They talk to the app only through these commands, its
environment and HTTP, never by importing it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from experiments.lab.procs import (
    DEFAULT_READY_TIMEOUT_S,
    DEFAULT_STOP_TIMEOUT_S,
    LOCALHOST,
    Probe,
    Process,
    http_probe,
    start,
    tcp_probe,
)

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
WSGI_APP = "chowist.wsgi:application"


def manage_argv(*args: str) -> list[str]:
    return [PYTHON, str(ROOT / "manage.py"), *args]


def gunicorn_argv(*, bind: str | None = None) -> list[str]:
    """gunicorn with the project's gunicorn.conf.py (which reads APP_HOST/APP_PORT unless `bind` overrides)."""
    return [
        PYTHON,
        "-m",
        "gunicorn",
        "-c",
        str(GUNICORN_CONF),
        *(["--no-control-socket"] if _gunicorn_has_control_socket() else []),
        *(["--bind", bind] if bind else []),
        WSGI_APP,
    ]


@dataclass
class AppServer:
    """gunicorn started by `gunicorn_start`: the master `process`, its ports and worker count."""

    process: Process
    app_port: int
    metrics_port: int
    workers: int
    ready_dir: Path

    @property
    def app_url(self) -> str:
        return f"http://{LOCALHOST}:{self.app_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{LOCALHOST}:{self.metrics_port}/metrics"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def worker_pids(self) -> list[int]:
        return self.process.children()

    def ready_worker_pids(self) -> list[int]:
        """Live workers that have loaded the app (gunicorn.conf.py's post_worker_init marks them)."""
        return [pid for pid in self.worker_pids() if (self.ready_dir / str(pid)).exists()]

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the master and its live workers."""
        return self.process.cpu_seconds()

    def stop(self, *, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> int | None:
        return self.process.stop(timeout_s=timeout_s)


def gunicorn_start(
    *,
    env: Mapping[str, str],
    app_port: int,
    metrics_port: int,
    log_path: Path,
    workers: int = 2,
    threads: int | None = 1,
    worker_connections: int | None = None,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> AppServer:
    """gunicorn -c gunicorn.conf.py chowist.wsgi:application, returned once every worker has booted.

    `threads=None` leaves GUNICORN_THREADS to `env` and the settings' default. Ready means: `workers` live workers
    that have loaded the app (forked is not enough: on a busy box importing Django takes seconds, longer than a
    client's timeout), the app port accepts connections (a bare TCP connect, so no probe request shows up in the
    request metrics) and the metrics port answers.
    """
    ready_dir = log_path.parent / f"gunicorn-ready-{app_port}"
    child_env = {
        **env,
        "APP_HOST": LOCALHOST,
        "APP_PORT": str(app_port),
        "APP_METRICS_PORT": str(metrics_port),
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_READY_DIR": str(ready_dir),
    }
    if threads is not None:
        child_env["GUNICORN_THREADS"] = str(threads)
    if worker_connections is not None:
        child_env["GUNICORN_WORKER_CONNECTIONS"] = str(worker_connections)
    process = start(gunicorn_argv(), name="gunicorn", log_path=log_path, env=child_env, cwd=ROOT)

    server = AppServer(process, app_port, metrics_port, workers, ready_dir)

    def workers_loaded() -> tuple[bool, str]:
        loaded = len(server.ready_worker_pids())
        return loaded >= workers, f"{loaded} of {workers} workers loaded the app"

    try:
        process.wait_ready(
            [
                workers_loaded,
                tcp_probe(app_port),
                http_probe(f"http://{LOCALHOST}:{metrics_port}/metrics", any_status=True),
            ],
            timeout_s=ready_timeout_s,
        )
    except BaseException:
        process.stop()
        raise
    return server


def consumer_start(
    *,
    env: Mapping[str, str],
    log_path: Path,
    ready: Iterable[Probe] | None = None,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> Process:
    """`manage.py run_huey`; ready (by default) when its metrics port (CONSUMER_METRICS_PORT in `env`) answers 200."""
    if ready is None:
        ready = [http_probe(f"http://{LOCALHOST}:{env['CONSUMER_METRICS_PORT']}/metrics")]
    return start(
        manage_argv("run_huey"),
        name="consumer",
        log_path=log_path,
        env=env,
        cwd=ROOT,
        ready=ready,
        ready_timeout_s=ready_timeout_s,
    )


def devserver_start(
    *,
    env: Mapping[str, str],
    port: int,
    log_path: Path,
    ready_path: str = "/api/places/popular/",
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> Process:
    """Django's dev server (no autoreload) on 127.0.0.1:`port`; ready when `ready_path` answers 200."""
    return start(
        manage_argv("runserver", "--noreload", f"{LOCALHOST}:{port}"),
        name="runserver",
        log_path=log_path,
        env=env,
        cwd=ROOT,
        ready=[http_probe(f"http://{LOCALHOST}:{port}{ready_path}")],
        ready_timeout_s=ready_timeout_s,
    )


def _gunicorn_has_control_socket() -> bool:
    # gunicorn 24+ opens a control socket at one fixed path under $HOME: two servers (a developer's lab and a
    # test's) would fight over it, and nothing here uses it.
    from gunicorn.config import KNOWN_SETTINGS

    return any(setting.name == "control_socket" for setting in KNOWN_SETTINGS)
