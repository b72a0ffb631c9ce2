"""An error raised in a view reaches a real Sentry-protocol server (Bugsink) carrying the request's trace id, on each
sentry-sdk major that pyproject.toml allows: the locked one, and 2.x from requirements/sentry-sdk-2.txt."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, free_port
from experiments.lab.appserver import gunicorn_start
from experiments.lab.bugsink import Bugsink, BugsinkUnavailable, bugsink_down, bugsink_events, bugsink_up

pytestmark = pytest.mark.slow

EVENT_WAIT_S = 20
SENTRY_SDK_2_LOCK = ROOT / "requirements" / "sentry-sdk-2.txt"
LOCKED_SENTRY_MAJOR = next(
    line.split("==")[1].split(".")[0]
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines()
    if line.startswith("sentry-sdk==")
)


def _sentry_sdk_2_overlay() -> Path:
    """sentry-sdk 2.x installed, hash-checked, into a folder the child puts before site-packages (kept per lock)."""
    digest = hashlib.sha256(SENTRY_SDK_2_LOCK.read_bytes()).hexdigest()[:12]
    target = ROOT / "var" / "sentry-sdk-2" / digest
    if not (target / "sentry_sdk").is_dir():
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes", "--target",
             str(target), "-r", str(SENTRY_SDK_2_LOCK)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            pytest.skip(f"sentry-sdk 2.x could not be installed from {SENTRY_SDK_2_LOCK.name}: {result.stderr[-500:]}")
    return target


@pytest.fixture(params=["locked", "2"], ids=lambda major: f"sentry-sdk-{major}")
def sentry_sdk_path(request) -> tuple[str, str]:
    """(PYTHONPATH prefix, the major the child imports) for each supported sentry-sdk major."""
    if request.param == "locked":
        return "", LOCKED_SENTRY_MAJOR
    return f"{_sentry_sdk_2_overlay()}:", "2"


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


def test_a_view_error_arrives_in_bugsink_with_the_trace_id(
    bugsink: Bugsink, child_env, tmp_path, sentry_sdk_path: tuple[str, str]
) -> None:
    path_prefix, major = sentry_sdk_path
    env = {
        **child_env,
        "PYTHONPATH": path_prefix + child_env["PYTHONPATH"],
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
    assert event["sdk"]["version"].split(".")[0] == major
    assert "cookie-secret-value" not in json.dumps(event)  # SENTRY_SEND_DEFAULT_PII is off
