"""A real gunicorn (this repo's gunicorn.conf.py) on free ports, sharing the test's database."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
BOOT_TIMEOUT_S = 30


@dataclass(frozen=True)
class Gunicorn:
    base: str
    metrics: str
    env: dict[str, str]
    pid: int


@contextmanager
def gunicorn_running(child_env: dict[str, str], **overrides: str) -> Iterator[Gunicorn]:
    port, metrics_port = free_port(), free_port()
    env = {**child_env, "APP_PORT": str(port), "APP_METRICS_PORT": str(metrics_port), "GUNICORN_WORKERS": "1"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(child_env["VAR_DIR"]) / "prom")
    env.update(overrides)
    process = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf.py", "chowist.wsgi:application"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"gunicorn exited with {process.returncode}")
                if time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not answer /healthz within {BOOT_TIMEOUT_S} s")
                time.sleep(0.2)
        yield Gunicorn(base=base, metrics=f"http://127.0.0.1:{metrics_port}/metrics", env=env, pid=process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def gunicorn_app(child_env: dict[str, str]) -> Iterator[Gunicorn]:
    with gunicorn_running(child_env) as app:
        yield app


@pytest.fixture
def gunicorn_two_workers(child_env: dict[str, str]) -> Iterator[Gunicorn]:
    with gunicorn_running(child_env, GUNICORN_WORKERS="2") as app:
        yield app
