"""Instrumentation cost in instructions per request: deterministic where wall-clock benchmarks are not.

    .venv/bin/python -m experiments.bench.overhead_profile [--iterations 10]

The wrk benchmark (experiments/bench/overhead.py) measures the issue's figure, throughput on vs off, but on a
shared 2-core VM the same configuration varies 2-3x between rounds. This runs the same request mix through
Django's WSGI handler in one process, once with OBSERVABILITY on and once off, each under valgrind's
callgrind, and counts the instructions executed inside the request loop only (start-up excluded by
collecting just inside functools.reduce, which drives the loop). Same binary, inputs and data: the same
count every time, whatever else the machine is doing. Gunicorn's own per-request work is not included, so
the ratio here is a slight overstatement of what the instrumentation costs a served request.

Uses the database `make bench-overhead` seeds (var/bench-overhead/). The popular-items endpoint is left out
of the mix: under valgrind the run is ~50x slower, so its 60 s cache would expire far more often per request
than in real time and swamp the comparison.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRACE_SEED = 13
DEFAULT_VAR_DIR = ROOT / "var" / "bench-overhead"
PLACES = 20
STATIC_PATHS = ["/", "/places/", "/places/?page=2", "/api/places/", "/healthz"]
WARMUP_ROUNDS = 3
FRAGMENT_TTL_S = 24 * 3600


def _paths() -> list[str]:
    return STATIC_PATHS + [p for pk in range(1, PLACES + 1) for p in (f"/places/{pk}/", f"/api/places/{pk}/")]


def _loop(iterations: int) -> None:
    """Run the mix `iterations` times through the WSGI handler (Django already configured by the env)."""
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    from observability.setup import setup

    setup(service="app")
    app = WSGIHandler()
    # Which requests the tracer samples is drawn from `random` (trace ids): seeded, the same requests are recorded
    # in every run, so the count is repeatable; unseeded, a few sampled requests more or less move it by ~0.1 M.
    random.seed(TRACE_SEED)

    def call(path: str) -> None:
        path_info, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1:8000",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        statuses: list[str] = []
        b"".join(app(environ, lambda status, headers: statuses.append(status)))
        if not statuses[0].startswith("200"):
            raise SystemExit(f"{path} answered {statuses[0]}: is the bench database seeded (make bench-overhead)?")

    paths = _paths()
    for path in paths * WARMUP_ROUNDS:
        call(path)
    # The measured loop runs inside one C function, so callgrind can collect exactly it (--toggle-collect).
    functools.reduce(lambda _acc, path: call(path), paths * iterations, None)


def _child_env(mode: str, var_dir: Path, scratch: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "DJANGO_ENV": "development",
        "DEBUG": "off",
        "OBSERVABILITY": mode,
        "OTEL_SPANS_FILE": str(scratch / f"spans-{mode}.jsonl"),
        "PROMETHEUS_MULTIPROC_DIR": str(scratch / f"prom-{mode}"),
        "DJANGO_SETTINGS_MODULE": "chowist.settings",
        # Under valgrind the run is ~50x slower in wall time: a fragment expiring mid-run (in one mode and not the
        # other) would be counted as instrumentation. Longer than any run.
        "PLACE_FRAGMENT_CACHE_TTL": str(FRAGMENT_TTL_S),
    }
    (scratch / f"prom-{mode}").mkdir(exist_ok=True)
    return env


def instructions_per_request(*, mode: str, iterations: int, var_dir: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="overhead-profile-") as scratch_dir:
        scratch = Path(scratch_dir)
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                f"--callgrind-out-file={scratch / 'callgrind.out'}",
                sys.executable,
                "-m",
                "experiments.bench.overhead_profile",
                "--child",
                str(iterations),
            ],
            cwd=ROOT,
            env=_child_env(mode, var_dir, scratch),
            capture_output=True,
            text=True,
        )
    collected = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or collected is None:
        raise SystemExit(f"the {mode} run failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return int(collected.group(1)) / (len(_paths()) * iterations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Instructions per request, OBSERVABILITY on vs off (callgrind).")
    parser.add_argument("--iterations", type=int, default=10, help="rounds of the 45-request mix per mode")
    parser.add_argument("--var-dir", type=Path, default=DEFAULT_VAR_DIR)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the per-request log lines are not the point here
        _loop(args.child)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    if not (args.var_dir / "chowist.sqlite3").exists():
        print(f"no seeded database under {args.var_dir}: run `make bench-overhead` once first", file=sys.stderr)
        return 2
    figures = {
        mode: instructions_per_request(mode=mode, iterations=args.iterations, var_dir=args.var_dir.resolve())
        for mode in ("off", "on")
    }
    summary = {
        "instructions_per_request_off": round(figures["off"]),
        "instructions_per_request_on": round(figures["on"]),
        "overhead_instructions_per_request": round(figures["on"] - figures["off"]),
        "ratio_on_over_off": round(figures["on"] / figures["off"], 4),
        "equivalent_throughput_ratio": round(figures["off"] / figures["on"], 4),
        "requests_per_mode": len(_paths()) * args.iterations,
    }
    print(
        f"instructions per request: off {figures['off'] / 1e6:.3f} M, on {figures['on'] / 1e6:.3f} M "
        f"(+{(figures['on'] - figures['off']) / 1e6:.3f} M); CPU-bound throughput on/off = "
        f"{summary['equivalent_throughput_ratio']:.3f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
