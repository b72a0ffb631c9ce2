"""End to end: a request that enqueues a huey task, the real consumer runs it, the task span joins the trace."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chowist.places.models import Place
from conftest import free_port
from experiments.lab.appserver import consumer_start, gunicorn_start

pytestmark = pytest.mark.slow

JOIN_TIMEOUT_S = 30


def _post_interaction(app_url: str, place_id: int, trace_id: str, span_id: str) -> int:
    request = urllib.request.Request(
        f"{app_url}/api/places/{place_id}/interactions/",
        data=json.dumps({"kind": "like"}).encode(),
        headers={"Content-Type": "application/json", "traceparent": f"00-{trace_id}-{span_id}-01"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _spans(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_consumers_task_span_joins_the_enqueuing_requests_trace(child_env, tmp_path) -> None:
    place = Place.objects.create(name="Trace Diner")
    spans_file = tmp_path / "spans.jsonl"
    env = {
        **child_env,
        "INTERACTIONS_MODE": "queued",
        "OTEL_TRACES_SAMPLER_RATIO": "1",
        "OTEL_SPANS_FILE": str(spans_file),
        "CONSUMER_METRICS_PORT": str(free_port()),
    }
    consumer = consumer_start(env=env, log_path=tmp_path / "consumer.log")
    server = gunicorn_start(env=env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "g.log")
    sent: set[str] = set()
    joined: dict | None = None
    try:
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        # A drain is enqueued only when none is pending (the consumer's start-up drain may be), so keep sending.
        while joined is None and time.monotonic() < deadline:
            trace_id = secrets.token_hex(16)
            assert _post_interaction(server.app_url, place.pk, trace_id, secrets.token_hex(8)) == 202
            sent.add(trace_id)
            time.sleep(1.0)
            spans = _spans(spans_file)
            servers = {s["span_id"]: s for s in spans if s["kind"] == "SERVER" and s["trace_id"] in sent}
            joined = next(
                (s for s in spans if s["kind"] == "CONSUMER" and s.get("parent_span_id") in servers),
                None,
            )
    finally:
        server.stop()
        consumer.stop(timeout_s=20)

    log = (tmp_path / "consumer.log").read_text()
    not_json = [line for line in log.splitlines() if line.strip() and not line.startswith("{")]
    assert not_json == [], f"the consumer wrote non-JSON lines: {not_json[:5]}"
    log = log[-2000:]
    assert joined is not None, f"no task span joined any of {len(sent)} request traces; consumer log:\n{log}"
    assert joined["trace_id"] in sent
    assert joined["service"] == "chowist-worker"
    assert joined["name"].startswith("task ")
    task_spans = [s for s in _spans(spans_file) if s.get("parent_span_id") == joined["span_id"]]
    assert any(s["attributes"].get("db.system") for s in task_spans), "the task's queries have no DB spans"
