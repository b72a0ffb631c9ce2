"""Telemetry that cannot start never stops the app from serving: it is logged once per process and counted."""

from __future__ import annotations

import json
import urllib.request

import pytest

from conftest import free_port
from experiments.lab.appserver import gunicorn_start

pytestmark = pytest.mark.slow


def _failures(metrics_text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("chowist_telemetry_setup_failures_total{"):
            labels, value = line.rsplit(" ", 1)
            signal = labels.split('signal="', 1)[1].split('"', 1)[0]
            counts[signal] = counts.get(signal, 0.0) + float(value)
    return counts


def test_the_app_serves_when_error_reporting_and_tracing_cannot_start(child_env, tmp_path) -> None:
    env = {
        **child_env,
        "OBSERVABILITY": "on",
        # sentry-sdk refuses it at init (as 3.0 refused an option the app passed): error reporting cannot start.
        "SENTRY_DSN": "not-a-dsn",
        # The span file's folder cannot be made under /dev/null: tracing cannot start.
        "OTEL_SPANS_FILE": "/dev/null/spans.jsonl",
        "OTEL_TRACES_SAMPLER_RATIO": "1",
    }
    server = gunicorn_start(
        env=env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "gunicorn.log", workers=2
    )
    try:
        statuses = []
        for path in ("/healthz", "/", "/places/"):
            with urllib.request.urlopen(f"{server.app_url}{path}", timeout=10) as response:
                statuses.append(response.status)
        with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
            failures = _failures(response.read().decode())
    finally:
        server.stop()

    assert statuses == [200, 200, 200]
    # Each of the two workers tried each signal once.
    assert failures == {"errors": 2.0, "tracing": 2.0, "metrics": 0.0}
    events = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    failed = [e for e in events if e.get("event") == "telemetry_setup_failed"]
    assert sorted(e["signal"] for e in failed) == ["errors", "errors", "tracing", "tracing"]
    assert all(e["level"] == "error" and e.get("exception") for e in failed)
    assert any("BadDsn" in e["error"] for e in failed if e["signal"] == "errors")
