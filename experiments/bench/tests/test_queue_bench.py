"""The queue benchmark runs end to end (tiny and slow-paced: this checks the script, it measures nothing)."""

from __future__ import annotations

import json
import shutil

import pytest

from experiments.bench.queue_bench import BackendResult, main, render


def test_no_lag_verdict_when_the_app_could_not_take_the_offered_rate():
    saturated = BackendResult(backend="sqlite", offered_rate=500, achieved_rate=200, interaction_lag_s={"p99": 0.1})
    assert "NOT MEASURED" in render([saturated])
    held = BackendResult(backend="redis", offered_rate=500, achieved_rate=499, interaction_lag_s={"p99": 2.0})
    assert "lag p99 2.000 s at 500/s vs target < 1 s: FAIL" in render([held])


@pytest.mark.slow
def test_bench_runs_on_sqlite(tmp_path, capsys, monkeypatch):
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (make system-deps); the script would fall back to its Python client")
    # The bench's children get their own VAR_DIR and database: nothing of this test run's.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    out = tmp_path / "bench.json"
    code = main(
        [
            "--backends=sqlite",
            "--accept-seconds=1",
            "--lag-seconds=1",
            "--rate=20",
            "--idle-samples=0",
            "--places=3",
            f"--work-dir={tmp_path / 'work'}",
            f"--json={out}",
        ]
    )
    assert code == 0
    [result] = json.loads(out.read_text())
    assert result["accepted"] > 0
    assert result["drained"] >= result["accepted"]
    assert result["interaction_lag_s"]["count"] > 0
    assert "| sqlite |" in capsys.readouterr().out
