"""Metrics under real gunicorn: exact and monotonic across 4 workers and a killed worker, valid for promtool."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from experiments.lab.appserver import AppServer, gunicorn_start

pytestmark = pytest.mark.slow

REQUESTS_SENT = 1000
CLIENT_THREADS = 8


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _scrape(server: AppServer) -> str:
    with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
        return response.read().decode()


def _request_total(exposition: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "django_http_responses_total_by_status_view_method_total"
    )


def _send(server: AppServer, count: int) -> list[int]:
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return list(pool.map(_get, [f"{server.app_url}/healthz"] * count))


def _wait_for_respawn(server: AppServer, killed: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = server.ready_worker_pids()
        if killed not in pids and len(pids) == server.workers:
            return
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not replace worker {killed}: {server.worker_pids()}")


@pytest.fixture
def four_workers(child_env, tmp_path):
    server = gunicorn_start(
        env=child_env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "gunicorn.log", workers=4
    )
    yield server
    server.stop()


def test_request_total_is_exact_and_never_decreases_across_a_killed_worker(four_workers: AppServer, child_env) -> None:
    server = four_workers
    multiproc_dir = Path(child_env["VAR_DIR"]) / "prometheus" / "app"  # settings' default under the child's VAR_DIR
    totals: list[float] = []
    failures: list[str] = []
    done = threading.Event()

    def scrape_continuously() -> None:
        while not done.is_set():
            try:
                totals.append(_request_total(_scrape(server)))
            except (OSError, ValueError) as exc:
                failures.append(repr(exc))
            time.sleep(0.02)

    scraper = threading.Thread(target=scrape_continuously)
    scraper.start()
    try:
        statuses = _send(server, REQUESTS_SENT // 2)
        # Killed between batches, while idle, so no request is in flight to be lost or double-counted.
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        _wait_for_respawn(server, victim)
        statuses += _send(server, REQUESTS_SENT - len(statuses))
    finally:
        done.set()
        scraper.join()
    totals.append(_request_total(_scrape(server)))

    assert failures == [], f"scrapes failed: {failures[:3]}"
    assert statuses == [200] * REQUESTS_SENT
    assert totals[-1] == REQUESTS_SENT
    assert len(totals) > 10
    assert totals == sorted(totals), "the request total went down between two scrapes"
    # The dead worker's counters live on in the archive file; its own files are gone (they used to pile up).
    assert multiproc_dir.is_dir()
    leftovers = list(multiproc_dir.glob(f"*_{victim}.db"))
    assert leftovers == [], leftovers
    assert (multiproc_dir / "counter_archive.db").exists()


def test_metrics_are_not_served_on_the_app_port_and_pass_promtool(four_workers: AppServer) -> None:
    server = four_workers
    assert _get(f"{server.app_url}/healthz") == 200
    assert _get(f"{server.app_url}/readyz") == 200  # queries the database
    assert _get(f"{server.app_url}/metrics") == 404
    exposition = _scrape(server)
    families = {family.name for family in text_string_to_metric_families(exposition)}
    assert {
        "django_http_responses_total_by_status_view_method",
        "django_http_requests_latency_seconds_by_view_method",
        "django_db_execute",
        "chowist_build_info",
    } <= families

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; `make system-deps`)")
    result = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr
