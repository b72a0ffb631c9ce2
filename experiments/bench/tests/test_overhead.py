"""The overhead benchmark's parsing of wrk's report (the benchmark itself is a script, not a test)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from experiments.bench.overhead import WRK_SCRIPT, _variants, wrk_parse

WRK_OUTPUT = """Running 8s test @ http://127.0.0.1:40000
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    40.12ms   30.01ms 1.20s    90.00%
    Req/Sec   450.00     50.00   600.00     70.00%
  Latency Distribution
     50%   36.58ms
     75%   50.00ms
     90%   80.00ms
     99%    1.21s
  7200 requests in 8.00s, 10.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:    907.80
Transfer/sec:      1.25MB
"""


def test_wrk_report_is_parsed_with_units() -> None:
    assert wrk_parse(WRK_OUTPUT) == (907.8, 36.58, 1210.0, 4, 5)


def test_microsecond_latencies_and_a_clean_run() -> None:
    clean = WRK_OUTPUT.replace("36.58ms", "850.00us").replace(
        "  Socket errors: connect 0, read 2, write 0, timeout 3\n", ""
    )
    rps, p50, _p99, non_2xx, errors = wrk_parse(clean.replace("  Non-2xx or 3xx responses: 4\n", ""))
    assert (rps, p50, non_2xx, errors) == (907.8, 0.85, 0, 0)


def test_the_request_mix_script_is_valid_lua_for_wrk(tmp_path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian package wrk; `make system-deps`)")
    script = tmp_path / "mix.lua"
    script.write_text(WRK_SCRIPT % '"/healthz", "/places/"')
    # Nothing listens on port 9 (discard): wrk loads the script, then fails to connect.
    result = subprocess.run(
        ["wrk", "-t1", "-c1", "-d1s", "-s", str(script), "http://127.0.0.1:9"], capture_output=True, text=True
    )
    output = result.stdout + result.stderr
    assert "mix.lua:" not in output, output  # how wrk reports a Lua error
    assert "unable to connect" in output, output


def test_extra_sampling_ratios_are_instrumented_runs_beside_on_and_off() -> None:
    assert _variants([]) == {"on": {"OBSERVABILITY": "on"}, "off": {"OBSERVABILITY": "off"}}
    extra = _variants([0.0, 1.0])
    assert extra["on-sampling-0"] == {"OBSERVABILITY": "on", "OTEL_TRACES_SAMPLER_RATIO": "0.0"}
    assert extra["on-sampling-1"] == {"OBSERVABILITY": "on", "OTEL_TRACES_SAMPLER_RATIO": "1.0"}
