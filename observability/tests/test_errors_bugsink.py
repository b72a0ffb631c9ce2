"""An error raised in a view reaches a real Sentry-protocol server (Bugsink) carrying the request's trace id."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request

import pytest

from conftest import free_port
from experiments.lab.appserver import gunicorn_start
from experiments.lab.bugsink import Bugsink, BugsinkUnavailable, bugsink_down, bugsink_events, bugsink_up

pytestmark = pytest.mark.slow

EVENT_WAIT_S = 20


@pytest.fixture
def bugsink(tmp_path):
    instance_dir = tmp_path / "bugsink"
    try:
        server = bugsink_up(instance_dir=instance_dir, port=free_port())
    except BugsinkUnavailable as exc:
        pytest.skip(f"Bugsink could not be installed or started (pip install bugsink into var/bugsink/venv): {exc}")
    yield server
    bugsink_down(instance_dir=instance_dir)


def _event_for(bugsink: Bugsink, trace_id: str) -> dict | None:
    deadline = time.monotonic() + EVENT_WAIT_S
    while time.monotonic() < deadline:
        for event in bugsink_events(bugsink):
            if (event["data"].get("tags") or {}).get("trace_id") == trace_id:
                return event["data"]
        time.sleep(0.5)
    return None


def test_a_view_error_arrives_in_bugsink_with_the_trace_id(bugsink: Bugsink, child_env, tmp_path) -> None:
    env = {
        **child_env,
        "DJANGO_SETTINGS_MODULE": "observability.tests.error_settings",
        "SENTRY_DSN": bugsink.dsn,
        "SENTRY_ENVIRONMENT": "lab-test",
        "GIT_SHA": "0123456789ab",
        "OTEL_SPANS_FILE": str(tmp_path / "spans.jsonl"),
    }
    server = gunicorn_start(env=env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "g.log")
    trace_id = secrets.token_hex(16)
    request = urllib.request.Request(
        f"{server.app_url}/boom/",
        headers={
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
            "X-Request-ID": "boom-1",
            "Cookie": "sessionid=cookie-secret-value",
        },
    )
    try:
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=10)
        assert raised.value.code == 500
        event = _event_for(bugsink, trace_id)
    finally:
        server.stop()

    assert event is not None, (
        f"no event with trace_id {trace_id} in Bugsink; gunicorn log:\n{server.log_path.read_text()[-2000:]}"
    )
    assert event["exception"]["values"][-1]["type"] == "DeliberateError"
    assert event["tags"]["request_id"] == "boom-1"
    assert event["contexts"]["otel"]["trace_id"] == trace_id
    assert event["release"] == "0123456789ab"
    assert event["environment"] == "lab-test"
    assert "cookie-secret-value" not in json.dumps(event)  # send_default_pii is off
