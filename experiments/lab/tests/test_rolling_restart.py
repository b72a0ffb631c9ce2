"""A rolling restart behind nginx under load: each gunicorn instance is stopped gracefully (SIGTERM: it stops
accepting, finishes what it has) and started again, one at a time; nginx sends the traffic to the other one, so
not one request fails."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from conftest import free_port
from experiments.lab.appserver import gunicorn_argv
from experiments.lab.nginx import FAIL_TIMEOUT_S, NginxSpec, nginx_argv, nginx_binary, nginx_write
from experiments.lab.procs import Process, http_probe, start

ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60
CLIENTS = 4
MAX_LOAD_S = 120
PATHS = ("/api/places/", "/places/", "/healthz", "/")


def _load(base: str, stop: threading.Event, outcomes: Counter, lock: threading.Lock) -> None:
    deadline = time.monotonic() + MAX_LOAD_S
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        path = PATHS[i % len(PATHS)]
        i += 1
        try:
            with urllib.request.urlopen(base + path, timeout=10) as response:
                response.read()
                outcome = response.status
        except urllib.error.HTTPError as exc:
            outcome = exc.code
        except OSError as exc:
            outcome = f"connection error: {exc}"
        with lock:
            outcomes[outcome] += 1


@pytest.mark.slow
def test_restarting_instances_one_at_a_time_behind_nginx_fails_no_request(tmp_path) -> None:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    var = tmp_path / "var"
    env = {**os.environ, "DJANGO_ENV": "test", "VAR_DIR": str(var), "PYTHONPATH": str(ROOT), "BEHIND_PROXY": "on"}
    for name in ("DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL", "CACHE_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    seed = ["--places", "30", "--users", "5", "--reviews", "30", "--interactions", "0"]
    subprocess.run([*manage, "seed_demo", *seed], cwd=ROOT, env=env, check=True, timeout=300)

    ports = [free_port(), free_port()]
    logs = [tmp_path / f"app-{n}.log" for n in range(len(ports))]

    def launch(n: int) -> Process:
        instance_env = {
            **env,
            "APP_PORT": str(ports[n]),
            "APP_METRICS_PORT": str(free_port()),
            "GUNICORN_WORKERS": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"prom-{n}"),
        }
        return start(
            gunicorn_argv(),
            name=f"gunicorn-{n}",
            log_path=logs[n],
            env=instance_env,
            cwd=ROOT,
            ready=[http_probe(f"http://127.0.0.1:{ports[n]}/readyz")],
            ready_timeout_s=READY_TIMEOUT_S,
        )

    instances: list[Process] = []
    nginx: Process | None = None
    proxy_port = free_port()
    spec = NginxSpec(proxy_port, tuple(ports), var / "static", var / "media", tmp_path / "nginx")
    base = f"http://127.0.0.1:{proxy_port}"
    stop, lock, outcomes = threading.Event(), threading.Lock(), Counter()
    clients = [threading.Thread(target=_load, args=(base, stop, outcomes, lock)) for _ in range(CLIENTS)]
    try:
        instances = [launch(n) for n in range(len(ports))]
        nginx = start(
            nginx_argv(nginx_write(spec)),
            name="nginx",
            log_path=tmp_path / "nginx.out",
            ready=[http_probe(base + "/healthz")],
            ready_timeout_s=READY_TIMEOUT_S,
        )
        for client in clients:
            client.start()
        time.sleep(2)
        for n in range(len(instances)):
            instances[n].stop(timeout_s=STOP_TIMEOUT_S)  # graceful: stop accepting, finish in-flight requests
            instances[n] = launch(n)
            # nginx skips an instance that refused a connection for FAIL_TIMEOUT_S: stopping the next one before
            # nginx has taken this one back leaves no live upstream (a rolling deploy must wait for it too).
            time.sleep(FAIL_TIMEOUT_S + 1)
        time.sleep(2)
    finally:
        stop.set()
        for client in clients:
            if client.is_alive():
                client.join(timeout=30)
        if nginx is not None:
            nginx.stop(timeout_s=STOP_TIMEOUT_S)
        for process in instances:
            process.stop(timeout_s=STOP_TIMEOUT_S)
    total = sum(outcomes.values())
    assert total > 100, outcomes
    assert outcomes == Counter({200: total}), f"requests that did not answer 200 during the restart: {outcomes}"
    # Both instances served before and after their restart (nginx balanced over them).
    for log in logs:
        assert log.read_text().count('"event":"request"') > 10
