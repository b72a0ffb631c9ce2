"""The alert recorder keeps every posted Alertmanager payload, with when it arrived; bad input is a 4xx."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from experiments.lab.webhook import AlertRecorder, read_alerts

PAYLOAD = {
    "version": "4",
    "status": "firing",
    "receiver": "page",
    "groupLabels": {"alertname": "AvailabilitySLOPageBurn", "severity": "page"},
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "AvailabilitySLOPageBurn", "severity": "page", "slo": "availability"},
            "startsAt": "2026-11-23T12:00:00Z",
        }
    ],
}


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    out = tmp_path / "alerts.jsonl"
    server = AlertRecorder(("127.0.0.1", 0), out)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", out
    finally:
        server.shutdown()
        server.server_close()


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_posted_payload_is_recorded(recorder: tuple[str, Path]) -> None:
    url, out = recorder
    assert _post(f"{url}/alerts", json.dumps(PAYLOAD).encode()) == 200
    assert _post(f"{url}/alerts", json.dumps({**PAYLOAD, "status": "resolved"}).encode()) == 200
    notes = read_alerts(out)
    assert [n["payload"]["status"] for n in notes] == ["firing", "resolved"]
    assert notes[0]["payload"]["alerts"][0]["labels"]["alertname"] == "AvailabilitySLOPageBurn"
    assert notes[0]["path"] == "/alerts"
    assert notes[0]["received_at"].endswith("+00:00")
    assert notes[0]["received_at_unix"] <= notes[1]["received_at_unix"]
    with urllib.request.urlopen(f"{url}/alerts", timeout=5) as response:
        assert len(json.load(response)["notifications"]) == 2


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]"])
def test_bad_input_is_a_400_and_nothing_is_recorded(recorder: tuple[str, Path], body: bytes) -> None:
    url, out = recorder
    assert _post(f"{url}/alerts", body) == 400
    assert read_alerts(out) == []


def test_health_and_torn_lines(recorder: tuple[str, Path]) -> None:
    url, out = recorder
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
        assert response.status == 200
    out.write_text(json.dumps({"received_at": "x", "payload": PAYLOAD}) + "\n" + '{"received_at": "y", "pay')
    assert len(read_alerts(out)) == 1
