"""Child processes for the end-to-end tests: the app (runserver) and the consumer (run_huey)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from conftest import PYTHON, ROOT

START_TIMEOUT_S = 30.0


def manage(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(
        [PYTHON, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
    )


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def http_post_json(url: str, body: dict, timeout: float = 5.0) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def reachable(url: str) -> bool:
    try:
        return http_get(url, timeout=1.0)[0] == 200
    except OSError:
        return False


def start_app(*, env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    proc = manage("runserver", "--noreload", f"127.0.0.1:{port}", env=env, log=log)
    url = f"http://127.0.0.1:{port}/api/places/popular/"
    wait_for(
        lambda: proc.poll() is None and reachable(url), timeout=START_TIMEOUT_S, what=f"the app on :{port} ({log})"
    )
    return proc


def start_consumer(*, env: dict[str, str], log: Path) -> subprocess.Popen:
    proc = manage("run_huey", env=env, log=log)
    url = f"http://127.0.0.1:{env['CONSUMER_METRICS_PORT']}/metrics"
    wait_for(lambda: proc.poll() is None and reachable(url), timeout=START_TIMEOUT_S, what=f"the consumer ({log})")
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    return proc.wait(timeout=timeout)
