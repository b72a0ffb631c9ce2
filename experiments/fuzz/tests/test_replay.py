"""`make fuzz`: the replay of issue 23's hostile inputs finds nothing on this code, and its leak search works."""

from __future__ import annotations

import json

import pytest

from experiments.fuzz import replay


def test_a_planted_secret_is_found_wherever_it_is_written() -> None:
    planted = {"reset token": "fuzzTok-abc", "wrong password": "fuzzPw-def"}
    outputs = {"request log": '{"path":"/accounts/password/reset/MQ/fuzzTok-abc"}', "span file": "[redacted]"}
    [finding] = replay.leaks_find(outputs, planted)
    assert (finding.kind, finding.detail) == ("leak", "reset token found in request log")


def test_server_errors_are_read_from_the_request_metrics() -> None:
    text = "\n".join(
        [
            'django_http_responses_total_by_status_view_method_total{method="GET",status="500",view="x"} 2.0',
            'django_http_responses_total_by_status_view_method_total{method="GET",status="503",view="y"} 1.0',
            'django_http_responses_total_by_status_view_method_total{method="GET",status="400",view="x"} 7.0',
        ]
    )
    assert replay.server_errors_counted(text) == 3.0


@pytest.mark.slow
def test_the_replay_finds_no_5xx_hang_or_leak(tmp_path) -> None:
    report = tmp_path / "fuzz.json"
    assert replay.run(budget_s=replay.DEFAULT_BUDGET_S, report=report, keep=False) == 0
    summary = json.loads(report.read_text())
    assert summary["findings"] == []
    assert summary["server_errors_in_metrics"] == 0
    cases = {name for name in dir(replay.Cases) if name.startswith("row")}
    assert {check["case"] for check in summary["checks"]} == {f"{m}/{c}" for m in replay.MODES for c in cases}
