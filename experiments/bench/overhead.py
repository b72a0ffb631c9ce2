"""Instrumentation overhead: the same gunicorn configuration and request mix with OBSERVABILITY on vs off.

    .venv/bin/python -m experiments.bench.overhead [--rounds 3 --duration 10 --connections 32]

Each round starts gunicorn (gunicorn.conf.py, same workers/threads) once per mode, in alternating order so
neither mode always runs on a warmer machine, warms it up, then drives it with wrk over a fixed mix of
pages and API calls on seeded data. Reports the median throughput ratio (on / off) and p50/p99 deltas.
Target: instrumented throughput >= 0.95x uninstrumented at about the same p99.

Talks to the app only through manage.py (migrate, seed_demo), gunicorn and HTTP.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from experiments.lab.appserver import gunicorn_start
from experiments.lab.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VAR_DIR = ROOT / "var" / "bench-overhead"
DEFAULT_REPORT = ROOT / "reports" / "overhead.json"
TARGET_RATIO = 0.95
# The same shape the lab serves with (settings' defaults), pinned here so both modes match exactly.
WORKERS, THREADS = 2, 4
SAMPLE_PLACES = 20
FIELDS = ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_request")
# Longer than any benchmark: the popular list is computed once (in a warm-up) and then served from the cache.
POPULAR_TTL_S = 24 * 3600
STATIC_PATHS = ["/", "/places/", "/places/?page=2", "/api/places/", "/api/places/popular/", "/healthz"]

WRK_SCRIPT = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


@dataclass
class Run:
    mode: str
    round: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu_ms_per_request: float


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk_parse(output: str) -> tuple[float, float, float, int, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx/3xx responses, socket errors) from `wrk --latency` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return rps, p50, p99, int(non_2xx.group(1)) if non_2xx else 0, sum(map(int, errors.groups())) if errors else 0


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _place_paths(app_url: str) -> list[str]:
    """Detail pages and API details of seeded places, found through the public API."""
    with urllib.request.urlopen(f"{app_url}/api/places/", timeout=10) as response:  # noqa: S310 - local URL
        payload = json.load(response)
    items = payload.get("results") or payload.get("places") or payload.get("items") or []
    ids = [item["id"] for item in items if isinstance(item, dict) and "id" in item][:SAMPLE_PLACES]
    return [path for pk in ids for path in (f"/places/{pk}/", f"/api/places/{pk}/")]


def _wrk(*, url: str, script: Path, seconds: int, connections: int, threads: int) -> str:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Instrumentation overhead: OBSERVABILITY on vs off under wrk.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--var-dir", type=Path, default=DEFAULT_VAR_DIR)
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    parser.add_argument("--no-seed", action="store_true", help="skip migrate + seed_demo (data already there)")
    parser.add_argument(
        "--sampling",
        type=float,
        nargs="*",
        default=[],
        metavar="RATIO",
        help="also run instrumented at these trace sampling ratios (e.g. 0 1), to split the cost of recorded traces",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: `make system-deps` (Debian package wrk)", file=sys.stderr)
        return 2

    # DEBUG off: Django's debug query log would be an overhead of its own, the same in both modes.
    env = {
        **os.environ,
        "VAR_DIR": str(args.var_dir.resolve()),
        "DJANGO_ENV": "development",
        "DEBUG": "off",
        # In the lab the consumer's periodic warm-up keeps the popular list cached; here nothing does, and an
        # expiry mid-run (every 60 s, in whichever mode is running) sends a stampede of recomputations.
        "POPULAR_CACHE_TTL": str(POPULAR_TTL_S),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if not args.no_seed:
        _manage(env, "migrate", "--noinput", "-v0")
        _manage(env, "seed_demo", "-v0")

    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="overhead-") as scratch_dir:
        scratch = Path(scratch_dir)
        script = scratch / "mix.lua"
        paths: list[str] = []
        variants = _variants(args.sampling)
        # Without a cap, one worker can accept all keep-alive connections and serve the whole run alone while the
        # other idles: measured as a 2x swing in throughput between identical runs.
        worker_connections = math.ceil(args.connections / WORKERS)
        for round_no in range(1, args.rounds + 1):
            # Alternating order, so that no variant always runs on a warmer (or busier) machine.
            modes = list(variants) if round_no % 2 else list(reversed(variants))
            for mode in modes:
                mode_env = {
                    **env,
                    **variants[mode],
                    "OTEL_SPANS_FILE": str(scratch / f"spans-{mode}.jsonl"),
                    "PROMETHEUS_MULTIPROC_DIR": str(scratch / f"prom-{mode}"),
                }
                server = gunicorn_start(
                    env=mode_env,
                    app_port=free_port(),
                    metrics_port=free_port(),
                    log_path=scratch / f"gunicorn-{mode}-{round_no}.log",
                    workers=WORKERS,
                    threads=THREADS,
                    worker_connections=worker_connections,
                )
                try:
                    if not paths:
                        paths = STATIC_PATHS + _place_paths(server.app_url)
                        script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
                    common = {"script": script, "connections": args.connections, "threads": args.wrk_threads}
                    _wrk(url=server.app_url, seconds=args.warmup, **common)
                    cpu_before = server.cpu_seconds()
                    output = _wrk(url=server.app_url, seconds=args.duration, **common)
                    cpu_used = server.cpu_seconds() - cpu_before
                finally:
                    server.stop()
                parsed = wrk_parse(output)
                # CPU per request does not depend on what else the machine is doing: the steadier figure.
                cpu_ms = cpu_used * 1000 / max(1.0, parsed[0] * args.duration)
                run = Run(mode, round_no, *parsed, server_cpu_ms_per_request=cpu_ms)
                runs.append(run)
                print(
                    f"round {round_no} {mode:>3}: {run.requests_per_s:8.1f} req/s  p50 {run.p50_ms:6.2f} ms  "
                    f"p99 {run.p99_ms:6.2f} ms  server CPU {run.server_cpu_ms_per_request:.3f} ms/req  "
                    f"non-2xx {run.non_2xx}  socket errors {run.socket_errors}",
                    flush=True,
                )
                time.sleep(1)

    def median(mode: str, field: str) -> float:
        return statistics.median(getattr(run, field) for run in runs if run.mode == mode)

    summary = {
        "throughput_ratio": median("on", "requests_per_s") / median("off", "requests_per_s"),
        "p50_delta_ms": median("on", "p50_ms") - median("off", "p50_ms"),
        "p99_delta_ms": median("on", "p99_ms") - median("off", "p99_ms"),
        "cpu_per_request_ratio": median("on", "server_cpu_ms_per_request") / median("off", "server_cpu_ms_per_request"),
        "on": {f: median("on", f) for f in FIELDS},
        "off": {f: median("off", f) for f in FIELDS},
        "target_ratio": TARGET_RATIO,
        "paths": paths,
        "config": {
            "workers": WORKERS,
            "threads": THREADS,
            "worker_connections": worker_connections,
            **{k: v for k, v in vars(args).items() if k != "report"},
        },
        "runs": [asdict(run) for run in runs],
    }
    summary["sampling_variants"] = {
        mode: {
            **{f: median(mode, f) for f in FIELDS},
            "throughput_ratio": median(mode, "requests_per_s") / median("off", "requests_per_s"),
            "cpu_per_request_ratio": median(mode, "server_cpu_ms_per_request")
            / median("off", "server_cpu_ms_per_request"),
        }
        for mode in variants
        if mode not in ("on", "off")
    }
    summary["meets_target"] = summary["throughput_ratio"] >= TARGET_RATIO
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(summary, indent=2, default=str))
    print(
        f"\nthroughput on/off = {summary['throughput_ratio']:.3f} (target >= {TARGET_RATIO}); "
        f"p50 delta {summary['p50_delta_ms']:+.2f} ms; p99 delta {summary['p99_delta_ms']:+.2f} ms; "
        f"server CPU per request on/off = {summary['cpu_per_request_ratio']:.3f}  -> {args.report}"
    )
    for mode, figures in summary["sampling_variants"].items():
        print(
            f"  {mode}: throughput on/off = {figures['throughput_ratio']:.3f}; "
            f"server CPU per request on/off = {figures['cpu_per_request_ratio']:.3f}"
        )
    return 0


def _variants(sampling: list[float]) -> dict[str, dict[str, str]]:
    """The runs of each round: instrumented as configured, uninstrumented, and instrumented per extra ratio."""
    variants = {"on": {"OBSERVABILITY": "on"}, "off": {"OBSERVABILITY": "off"}}
    for ratio in sampling:
        variants[f"on-sampling-{ratio:g}"] = {"OBSERVABILITY": "on", "OTEL_TRACES_SAMPLER_RATIO": str(ratio)}
    return variants


if __name__ == "__main__":
    sys.exit(main())
