"""Traces and logs from a real gunicorn: one trace per request with DB and cache spans, JSON on every line."""

from __future__ import annotations

import http.client
import json
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, free_port
from experiments.lab.appserver import gunicorn_start

pytestmark = pytest.mark.slow


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers)


def _json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_one_trace_per_request_with_db_and_cache_spans_and_matching_logs(child_env, tmp_path) -> None:
    spans_file, log_file = tmp_path / "spans.jsonl", tmp_path / "app.log"
    env = {**child_env, "OTEL_SPANS_FILE": str(spans_file), "LOG_FILE": str(log_file), "OTEL_TRACES_SAMPLER_RATIO": "1"}
    server = gunicorn_start(
        env=env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "gunicorn.log", threads=2
    )
    trace_id, parent_span_id = secrets.token_hex(16), secrets.token_hex(8)
    try:
        status, headers = _get(
            f"{server.app_url}/api/places/popular/",
            {"traceparent": f"00-{trace_id}-{parent_span_id}-01", "X-Request-ID": "e2e-popular-1"},
        )
        assert status == 200
        assert headers["X-Request-ID"] == "e2e-popular-1"
        for _ in range(3):
            _get(f"{server.app_url}/")
            _get(f"{server.app_url}/healthz")  # a probe: excluded from tracing (OTEL_PYTHON_DJANGO_EXCLUDED_URLS)
    finally:
        server.stop()  # worker_exit flushes the span processor

    spans = _json_lines(spans_file)
    mine = [span for span in spans if span["trace_id"] == trace_id]
    (request_span,) = [span for span in mine if span["kind"] == "SERVER"]
    assert request_span["parent_span_id"] == parent_span_id  # joined the caller's trace
    assert request_span["service"] == "chowist-app"
    attributes = request_span["attributes"]
    assert attributes["http.request_id"] == "e2e-popular-1"
    # opentelemetry-instrumentation-django, current HTTP semantic conventions
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["http.route"] == "api/places/popular/"
    assert request_span["name"] == "GET api/places/popular/"
    children = [span for span in mine if span["parent_span_id"] == request_span["span_id"]]
    assert any(span["attributes"].get("db.system") for span in children), children
    assert any(span["name"].startswith("cache.") for span in children), children

    home_traces = [
        span["trace_id"] for span in spans if span["kind"] == "SERVER" and span["name"] == "GET marketing:home"
    ]
    assert len(home_traces) == len(set(home_traces)) == 3  # one trace per request, one server span each
    assert not [span for span in spans if "healthz" in span["name"]]
    orphans = [span for span in spans if span["trace_id"] not in {trace_id, *home_traces}]
    assert not orphans, [
        (o["name"], o["attributes"].get("db.statement", "")[:80]) for o in orphans
    ]  # no spans outside the requests (e.g. the probes' queries)

    lines = _json_lines(log_file)  # raises if any line is not JSON
    (event,) = [line for line in lines if line["event"] == "request" and line.get("request_id") == "e2e-popular-1"]
    assert event["trace_id"] == trace_id
    assert event["span_id"] == request_span["span_id"]
    assert event["view"] == "interactions_api:popular"
    probes = [line for line in lines if line["event"] == "request" and line["view"] == "core:healthz"]
    assert len(probes) == 3 and all(len(line["trace_id"]) == 32 for line in probes)  # logged, with ids
    assert event["status"] == 200
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["event"] for line in lines)
    assert not [line for line in lines if line["logger"] == "gunicorn.access"]  # the request event is the access log
    assert all(line["service"] == "app" for line in lines)


def test_observability_off_means_no_metrics_spans_or_request_ids(child_env, tmp_path) -> None:
    spans_file = tmp_path / "spans.jsonl"
    env = {**child_env, "OBSERVABILITY": "off", "OTEL_SPANS_FILE": str(spans_file)}
    server = gunicorn_start(env=env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "g.log")
    try:
        status, headers = _get(f"{server.app_url}/readyz", {"X-Request-ID": "off-1"})
        assert status == 200
        assert "X-Request-ID" not in headers
        with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
            exposition = response.read().decode()
        assert "django_http_" not in exposition and "django_db_" not in exposition
    finally:
        server.stop()
    assert not spans_file.exists()


TASK_SCRIPT = """
import django, structlog
django.setup()
from observability.setup import setup, shutdown
from workers.telemetry import capture_carrier, task_context
from opentelemetry.trace import SpanKind
from observability.tracing import tracer

setup(service="worker")
with tracer().start_as_current_span("POST interactions_api:create", kind=SpanKind.SERVER):
    carrier = capture_carrier()
with task_context(task_name="drain_interactions", task_id="task-1", carrier=carrier):
    structlog.get_logger("workers").info("drained", rows=2)
shutdown()
"""


def test_a_task_span_joins_the_enqueuing_trace_in_another_process(child_env, tmp_path) -> None:
    spans_file, log_file = tmp_path / "spans.jsonl", tmp_path / "worker.log"
    env = {**child_env, "OTEL_SPANS_FILE": str(spans_file), "LOG_FILE": str(log_file), "OTEL_TRACES_SAMPLER_RATIO": "1"}
    subprocess.run([sys.executable, "-c", TASK_SCRIPT], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True)

    spans = {span["name"]: span for span in _json_lines(spans_file)}
    request, task = spans["POST interactions_api:create"], spans["task drain_interactions"]
    assert task["trace_id"] == request["trace_id"]
    assert task["parent_span_id"] == request["span_id"]
    assert task["kind"] == "CONSUMER"
    assert task["service"] == "chowist-worker"
    (line,) = [line for line in _json_lines(log_file) if line["event"] == "drained"]
    assert (line["task_name"], line["task_id"], line["trace_id"]) == ("drain_interactions", "task-1", task["trace_id"])
    assert line["service"] == "worker"


def test_unsampled_requests_still_log_a_trace_id_and_a_sampled_caller_is_always_kept(child_env, tmp_path) -> None:
    spans_file, log_file = tmp_path / "spans.jsonl", tmp_path / "app.log"
    env = {**child_env, "OTEL_SPANS_FILE": str(spans_file), "LOG_FILE": str(log_file), "OTEL_TRACES_SAMPLER_RATIO": "0"}
    server = gunicorn_start(env=env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "g.log")
    kept = secrets.token_hex(16)
    try:
        _get(f"{server.app_url}/api/places/popular/", {"X-Request-ID": "unsampled-1"})
        _get(f"{server.app_url}/api/places/popular/", {"traceparent": f"00-{kept}-{secrets.token_hex(8)}-01"})
    finally:
        server.stop()
    (event,) = [line for line in _json_lines(log_file) if line.get("request_id") == "unsampled-1"]
    assert len(event["trace_id"]) == 32
    recorded = {span["trace_id"] for span in _json_lines(spans_file)} if spans_file.exists() else set()
    assert len(event["span_id"]) == 16
    assert recorded == {kept}  # nothing of the unsampled request: no server span, no query or cache spans


def test_a_password_reset_token_never_reaches_the_span_or_the_log(child_env, tmp_path) -> None:
    # Before: the confirm URL, working token included, was the span's url.path and the log line's path.
    spans_file, log_file = tmp_path / "spans.jsonl", tmp_path / "app.log"
    env = {**child_env, "OTEL_SPANS_FILE": str(spans_file), "LOG_FILE": str(log_file), "OTEL_TRACES_SAMPLER_RATIO": "1"}
    server = gunicorn_start(
        env=env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "gunicorn.log", threads=2
    )
    token = "c4a9b2-" + secrets.token_hex(16)
    try:
        request = urllib.request.Request(f"{server.app_url}/accounts/password/reset/MQ/{token}/")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        server.stop()
    server_spans = [s for s in _json_lines(spans_file) if s["kind"] == "SERVER"]
    assert server_spans, "the request was not traced"
    assert any(
        s["attributes"].get("url.path") == "/accounts/password/reset/[redacted]/[redacted]/" for s in server_spans
    )
    assert token not in spans_file.read_text()
    assert token not in log_file.read_text()


def test_a_reset_token_in_an_unmatched_path_never_reaches_the_span_or_any_log(child_env, tmp_path) -> None:
    # Before: without the trailing slash (301) or with a segment appended (404) the token was the span's url.path,
    # the request log's path and the "Not Found" warning's text: redaction applied only to a matched route.
    spans_file, log_file, gunicorn_log = tmp_path / "spans.jsonl", tmp_path / "app.log", tmp_path / "gunicorn.log"
    env = {**child_env, "OTEL_SPANS_FILE": str(spans_file), "LOG_FILE": str(log_file), "OTEL_TRACES_SAMPLER_RATIO": "1"}
    server = gunicorn_start(env=env, app_port=free_port(), metrics_port=free_port(), log_path=gunicorn_log, threads=2)
    token = "c4a9b2-" + secrets.token_hex(16)
    statuses = []
    try:
        for suffix in ("", "/extra/"):
            connection = http.client.HTTPConnection("127.0.0.1", int(server.app_url.rsplit(":", 1)[1]), timeout=10)
            connection.request("GET", f"/accounts/password/reset/MQ/{token}{suffix}")
            statuses.append(connection.getresponse().status)
            connection.close()
    finally:
        server.stop()
    assert statuses == [301, 404]
    server_spans = [s for s in _json_lines(spans_file) if s["kind"] == "SERVER"]
    assert [s["attributes"].get("url.path") for s in server_spans] == ["/accounts/password/reset/[redacted]"] * 2
    for output in (spans_file, log_file, gunicorn_log):
        assert token not in output.read_text(), output.name


def test_an_untrusted_clients_sampled_traceparent_forces_nothing(child_env, tmp_path) -> None:
    # Before: a client sending sampled=1 had every one of its requests recorded, whatever the ratio.
    spans_file = tmp_path / "spans.jsonl"
    env = {
        **child_env,
        "OTEL_SPANS_FILE": str(spans_file),
        "OTEL_TRACES_SAMPLER_RATIO": "0",
        "OTEL_TRUST_TRACEPARENT": "off",
    }
    server = gunicorn_start(
        env=env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "gunicorn.log", threads=2
    )
    forced = secrets.token_hex(16)
    try:
        for _ in range(5):
            status, _ = _get(f"{server.app_url}/api/places/", {"traceparent": f"00-{forced}-{secrets.token_hex(8)}-01"})
            assert status == 200
    finally:
        server.stop()
    text = spans_file.read_text() if spans_file.exists() else ""
    assert forced not in text
    assert not [s for s in _json_lines(spans_file) if s["kind"] == "SERVER"] if text else True
