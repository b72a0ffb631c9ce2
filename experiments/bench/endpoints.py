"""What each endpoint of the load mix costs, against a minimal Django JSON view: `make bench-endpoints`.

    .venv/bin/python -m experiments.bench.endpoints [--full] [--iterations 20] [--wrk-rounds 1] [--no-wrk]

Two tables:

1. Instructions per request (callgrind; deterministic). Each variant (the minimal view of
   `experiments/bench/minimal_site.py`, the app with OBSERVABILITY on, off, and off with the anonymous page
   cache off) runs in one process under valgrind, calling Django's WSGI handler directly. Each endpoint is
   warmed up, then called `--iterations` times inside `math.fsum`, the only function callgrind collects in
   (`--toggle-collect`) and dumps after (`--dump-after`): one dump per endpoint, start-up and warm-up
   excluded, the same count on a busy machine as on an idle one. Gunicorn's own per-request work is not in it.
2. Requests per second under wrk (-t2 -c32, one URL at a time) against gunicorn with the lab's shape, the
   minimal view served the same way; variants interleaved per round. Noisy on a shared 2-core VM (±30 %):
   the instruction table decides, wrk confirms.

The goals (issue 13) are instruction ratios to the minimal view: cached popular <= 1.6x, home <= 1.5x, API
detail and /places/<id>/ <= 2.5x, API list and /places/ <= 3x. Repeating one URL is what a cache is for, so
the cached variants show the steady state of a hot page; the `page cache off` column is the cold path.

Data: a small seed by default (500 places), `--full` for the full demo data (10,000 places, 200,000
reviews, 1,000,000 interactions; seeding takes minutes the first time). Each seed keeps its own database under
var/bench-endpoints-<seed>/, reused while the seed arguments are unchanged.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from experiments.bench.overhead import wrk_parse
from experiments.bench.overhead_profile import TRACE_SEED
from experiments.lab.appserver import PYTHON, gunicorn_start
from experiments.lab.procs import Process, free_port, http_probe, start

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REPORT = ROOT / "reports" / "bench-endpoints.json"
SEEDS = {
    "small": ["--places", "500", "--users", "100", "--reviews", "3000", "--interactions", "5000", "--seed", "1"],
    "full": ["--places", "10000", "--users", "2000", "--reviews", "200000", "--interactions", "1000000"],
}
# The lab's serving shape (settings' defaults), for the app and the minimal view alike.
WORKERS, THREADS = 2, 2
WARMUP_CALLS = 3
# Longer than any run, valgrind's ~50x slowdown included: caches expire by invalidation, not by the clock here.
BENCH_CACHE_TTL_S = 24 * 3600
MINIMAL = "minimal"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # "{place}" is replaced by a seeded place id
    goal: float | None = None  # instruction ratio to the minimal view, at most
    method: str = "GET"
    body: str = ""
    status: int = 200


ENDPOINTS = (
    Endpoint("popular (cached)", "/api/places/popular/?limit=10&window=7d", goal=1.6),
    Endpoint("home", "/", goal=1.5),
    Endpoint("API detail", "/api/places/{place}/", goal=2.5),
    Endpoint("/places/<id>/", "/places/{place}/", goal=2.5),
    Endpoint("API list", "/api/places/?page=2", goal=3.0),
    Endpoint("/places/", "/places/?page=2", goal=3.0),
    Endpoint("API search", "/api/places/?q=pizza"),
    Endpoint("API category", "/api/places/?category=pizza"),
    Endpoint("random place", "/places/random/", status=302),
    Endpoint(
        "POST interaction", "/api/places/{place}/interactions/", method="POST", body='{"kind": "view"}', status=202
    ),
    Endpoint("/healthz", "/healthz"),
)
MINIMAL_ENDPOINT = Endpoint(MINIMAL, "/json")
# Variant name -> environment on top of the bench's own.
VARIANTS: dict[str, dict[str, str]] = {
    "on": {"OBSERVABILITY": "on"},
    "off": {"OBSERVABILITY": "off"},
    "off, page cache off": {"OBSERVABILITY": "off", "PAGE_CACHE": "off"},
}
WRK_VARIANTS = ("on", "off")


# --- the child: one variant's requests under callgrind ------------------------------------------------
def _child(spec: dict) -> None:
    import io

    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    if spec["app"]:
        from observability.setup import setup

        setup(service="app")
    app = WSGIHandler()
    # Which requests the tracer samples is drawn from `random` (trace ids): seeded, the same requests are recorded
    # in every run, so the count is repeatable; unseeded, a few sampled requests more or less move it by ~0.1 M.
    random.seed(TRACE_SEED)

    def call(endpoint: dict) -> float:
        path_info, _, query = endpoint["path"].partition("?")
        body = endpoint["body"].encode()
        environ = {
            "REQUEST_METHOD": endpoint["method"],
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1:8000",
            "CONTENT_TYPE": "application/json" if body else "",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        statuses: list[str] = []
        b"".join(app(environ, lambda status, headers: statuses.append(status)))
        if not statuses[0].startswith(str(endpoint["status"])):
            raise SystemExit(f"{endpoint['method']} {endpoint['path']} answered {statuses[0]}")
        return 0.0

    for endpoint in spec["endpoints"]:
        for _ in range(WARMUP_CALLS):
            call(endpoint)
    # math.fsum drives each endpoint's loop: callgrind collects only inside it and dumps when it returns.
    for endpoint in spec["endpoints"]:
        math.fsum(map(call, [endpoint] * spec["iterations"]))


def _valgrind(*, spec: dict, env: dict[str, str], scratch: Path) -> subprocess.Popen[str]:
    out = scratch / "callgrind.out"
    (scratch / "spec.json").write_text(json.dumps(spec))
    return subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=math_fsum",
            "--dump-after=math_fsum",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "experiments.bench.endpoints",
            "--child",
            str(scratch / "spec.json"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def dump_totals(scratch: Path) -> list[int]:
    """Instructions of each callgrind dump, in dump order (callgrind.out.1, .2, ...; the final one is empty)."""
    dumps = sorted(scratch.glob("callgrind.out.*"), key=lambda p: int(p.suffix.lstrip(".")))
    totals = []
    for dump in dumps:
        match = re.search(r"^(?:totals|summary): (\d+)", dump.read_text(errors="replace"), re.MULTILINE)
        totals.append(int(match.group(1)) if match else 0)
    return totals


def _variant_env(base: dict[str, str], variant: str, scratch: Path) -> dict[str, str]:
    if variant == MINIMAL:
        return {**base, "DJANGO_SETTINGS_MODULE": "experiments.bench.minimal_site"}
    (scratch / "prom").mkdir(parents=True, exist_ok=True)
    (scratch / "cache").mkdir(exist_ok=True)
    return {
        **base,
        **VARIANTS[variant],
        "DJANGO_SETTINGS_MODULE": "chowist.settings",
        "OTEL_SPANS_FILE": str(scratch / "spans.jsonl"),
        "PROMETHEUS_MULTIPROC_DIR": str(scratch / "prom"),
        # Each variant starts from a cold cache of its own: one variant's pages are not another's warm-up.
        "CACHE_URL": f"file://{scratch / 'cache'}",
    }


def instructions(
    *, base_env: dict[str, str], endpoints: list[Endpoint], iterations: int, variants: list[str]
) -> dict[str, dict[str, float]]:
    """{variant: {endpoint name: instructions per request}}, the variants two at a time (two cores)."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-endpoints-") as scratch_dir:
        jobs = []
        for variant in variants:
            scratch = Path(scratch_dir) / re.sub(r"\W+", "-", variant)
            scratch.mkdir()
            chosen = [MINIMAL_ENDPOINT] if variant == MINIMAL else endpoints
            spec = {"app": variant != MINIMAL, "iterations": iterations, "endpoints": [asdict(e) for e in chosen]}
            jobs.append((variant, chosen, scratch, spec))
        running: list[tuple[str, list[Endpoint], Path, subprocess.Popen[str]]] = []
        pending = list(jobs)
        while pending or running:
            while pending and len(running) < 2:
                variant, chosen, scratch, spec = pending.pop(0)
                env = _variant_env(base_env, variant, scratch)
                running.append((variant, chosen, scratch, _valgrind(spec=spec, env=env, scratch=scratch)))
            variant, chosen, scratch, process = running.pop(0)
            _, stderr = process.communicate()
            totals = dump_totals(scratch)
            if process.returncode != 0 or len(totals) < len(chosen):
                raise SystemExit(f"the {variant} callgrind run failed:\n{stderr[-3000:]}")
            results[variant] = {e.name: totals[i] / iterations for i, e in enumerate(chosen)}
            print(f"callgrind: {variant} done", flush=True)
    return results


# --- wrk ------------------------------------------------------------------------------------------------
def _wrk(url: str, *, endpoint: Endpoint, seconds: int, scratch: Path) -> tuple[float, int]:
    """(requests/s, unexpected responses) for one URL."""
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    if endpoint.method != "GET":
        script = scratch / "post.lua"
        script.write_text(
            f'wrk.method = "{endpoint.method}"\nwrk.body = {json.dumps(endpoint.body)}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps, _p50, _p99, non_2xx, errors = wrk_parse(output)
    # wrk counts 3xx as fine and everything else outside 2xx as "non-2xx": the redirect endpoint is not an error.
    return rps, non_2xx + errors


def _warm(url: str, endpoint: Endpoint) -> None:
    request = urllib.request.Request(url, data=endpoint.body.encode() or None, method=endpoint.method)  # noqa: S310 - a local URL
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - a local URL
            response.read()
    except urllib.error.HTTPError:
        pass  # the redirect endpoint's 302 is not followed here; wrk checks the statuses


def _minimal_start(env: dict[str, str], port: int, log: Path) -> Process:
    argv = [PYTHON, "-m", "gunicorn", "-w", str(WORKERS), "--threads", str(THREADS), "-k", "gthread"]
    return start(
        [*argv, "-b", f"127.0.0.1:{port}", "experiments.bench.minimal_site:application"],
        name="minimal-site",
        log_path=log,
        # Not from the project root: gunicorn would read the app's gunicorn.conf.py from there.
        env={**env, "DJANGO_SETTINGS_MODULE": "experiments.bench.minimal_site", "PYTHONPATH": str(ROOT)},
        cwd=log.parent,
        ready=[http_probe(f"http://127.0.0.1:{port}{MINIMAL_ENDPOINT.path}")],
    )


def throughput(
    *, base_env: dict[str, str], endpoints: list[Endpoint], rounds: int, seconds: int
) -> dict[str, dict[str, float]]:
    """{variant: {endpoint: median requests/s}}; the minimal view under the name MINIMAL."""
    raw: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-endpoints-wrk-") as scratch_dir:
        scratch = Path(scratch_dir)
        for round_no in range(1, rounds + 1):
            order = [MINIMAL, *WRK_VARIANTS]
            for variant in order if round_no % 2 else list(reversed(order)):
                if variant == MINIMAL:
                    port = free_port()
                    process = _minimal_start(base_env, port, scratch / "minimal.log")
                    try:
                        rps, bad = _wrk(
                            f"http://127.0.0.1:{port}/json", endpoint=MINIMAL_ENDPOINT, seconds=seconds, scratch=scratch
                        )
                    finally:
                        process.stop()
                    raw.setdefault(MINIMAL, {}).setdefault(MINIMAL, []).append(rps)
                    print(f"wrk round {round_no}: minimal view {rps:.0f} req/s", flush=True)
                    continue
                env = _variant_env(base_env, variant, scratch / f"{variant}-{round_no}")
                server = gunicorn_start(
                    env=env,
                    app_port=free_port(),
                    metrics_port=free_port(),
                    log_path=scratch / f"gunicorn-{variant}-{round_no}.log",
                    workers=WORKERS,
                    threads=THREADS,
                    worker_connections=16,
                )
                try:
                    for endpoint in endpoints:
                        url = server.app_url + endpoint.path
                        # One request alone first: a cold worker's first answer can take seconds on a busy box.
                        _warm(url, endpoint)
                        _wrk(url, endpoint=endpoint, seconds=2, scratch=scratch)
                        rps, bad = _wrk(url, endpoint=endpoint, seconds=seconds, scratch=scratch)
                        if bad and endpoint.status < 300:
                            print(f"  {endpoint.name}: {bad} failed responses", flush=True)
                        raw.setdefault(variant, {}).setdefault(endpoint.name, []).append(rps)
                finally:
                    server.stop()
                print(f"wrk round {round_no}: {variant} done", flush=True)
    return {v: {e: statistics.median(xs) for e, xs in by_endpoint.items()} for v, by_endpoint in raw.items()}


# --- the report -----------------------------------------------------------------------------------------
def table(
    *, counts: dict[str, dict[str, float]], rates: dict[str, dict[str, float]], endpoints: list[Endpoint]
) -> tuple[str, list[dict]]:
    """The printed tables and one row per endpoint for the JSON report."""
    minimal_ir = counts[MINIMAL][MINIMAL]
    variants = [v for v in counts if v != MINIMAL]
    lines = [f"minimal Django JSON view: {minimal_ir / 1000:.0f} k instructions per request", ""]
    header = f"{'endpoint':<20} {'goal':>6} " + " ".join(f"{v + ' k':>22} {'ratio':>6}" for v in variants)
    lines += [header, "-" * len(header)]
    rows = []
    for endpoint in endpoints:
        row: dict = {"endpoint": endpoint.name, "path": endpoint.path, "goal": endpoint.goal}
        cells = []
        for variant in variants:
            ir = counts[variant][endpoint.name]
            ratio = ir / minimal_ir
            met = endpoint.goal is None or ratio <= endpoint.goal
            row[variant] = {"instructions": round(ir), "ratio": round(ratio, 3), "goal_met": met}
            mark = "" if endpoint.goal is None else (" ok" if met else " !!")
            cells.append(f"{ir / 1000:>22.0f} {ratio:>6.2f}{mark}")
        goal = f"{endpoint.goal:.1f}x" if endpoint.goal else "-"
        lines.append(f"{endpoint.name:<20} {goal:>6} " + " ".join(cells))
        rows.append(row)
    goals = [r for r in rows if r["goal"] is not None]
    for variant in variants:
        met = sum(r[variant]["goal_met"] for r in goals)
        lines.append(f"goals met with {variant}: {met}/{len(goals)}")
    if rates:
        minimal_rps = rates[MINIMAL][MINIMAL]
        lines += ["", f"wrk -t2 -c32, gunicorn {WORKERS} x {THREADS} gthread: minimal view {minimal_rps:.0f} req/s"]
        lines.append(f"{'endpoint':<20} " + " ".join(f"{v + ' req/s':>14} {'/minimal':>8}" for v in WRK_VARIANTS))
        for row in rows:
            cells = []
            for variant in WRK_VARIANTS:
                rps = rates[variant][row["endpoint"]]
                row.setdefault("wrk", {})[variant] = {"requests_per_s": round(rps, 1), "ratio": rps / minimal_rps}
                cells.append(f"{rps:>14.0f} {rps / minimal_rps:>8.2f}")
            lines.append(f"{row['endpoint']:<20} " + " ".join(cells))
    return "\n".join(lines), rows


def _seed(env: dict[str, str], seed: str, var_dir: Path) -> None:
    marker = var_dir / "seeded.json"
    if marker.exists() and json.loads(marker.read_text()) == SEEDS[seed]:
        # The data is reused; the schema follows the code (a no-op when nothing changed).
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        return
    if var_dir.exists():
        shutil.rmtree(var_dir)
    var_dir.mkdir(parents=True)
    print(f"seeding the {seed} demo data into {var_dir} ...", flush=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "seed_demo", *SEEDS[seed]], cwd=ROOT, env=env, check=True)
    marker.write_text(json.dumps(SEEDS[seed]))


def _place_id(env: dict[str, str]) -> int:
    code = (
        "from chowist.places.models import Place; print(Place.objects.order_by('id').values_list('id', flat=True)[7])"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.split()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cost per endpoint against a minimal Django view (callgrind, wrk).")
    parser.add_argument("--full", action="store_true", help="the full demo data instead of the small seed")
    parser.add_argument("--iterations", type=int, default=20, help="measured calls per endpoint under callgrind")
    parser.add_argument("--wrk-rounds", type=int, default=1)
    parser.add_argument("--wrk-duration", type=int, default=5, help="seconds per URL per round")
    parser.add_argument("--no-wrk", action="store_true", help="instruction counts only")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - request log lines are not the point here
        _child(json.loads(args.child.read_text()))
        return 0
    for tool in ("valgrind",) + (() if args.no_wrk else ("wrk",)):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian package {tool}; `make system-deps`)", file=sys.stderr)
            return 2
    seed = "full" if args.full else "small"
    var_dir = ROOT / "var" / f"bench-endpoints-{seed}"
    # DEBUG off: Django's debug query log would be a cost of its own.
    base_env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "DJANGO_ENV": "development",
        "DEBUG": "off",
        "LOG_LEVEL": "WARNING",
        "POPULAR_CACHE_TTL": str(BENCH_CACHE_TTL_S),
        "PAGE_CACHE_TTL": str(BENCH_CACHE_TTL_S),
    }
    base_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    base_env.pop("DATABASE_URL", None)
    _seed(base_env, seed, var_dir)
    place = _place_id(base_env)
    endpoints = [Endpoint(**{**asdict(e), "path": e.path.format(place=place)}) for e in ENDPOINTS]
    counts = instructions(
        base_env=base_env, endpoints=endpoints, iterations=args.iterations, variants=[MINIMAL, *VARIANTS]
    )
    print("\n" + table(counts=counts, rates={}, endpoints=endpoints)[0] + "\n", flush=True)
    rates = (
        {}
        if args.no_wrk
        else throughput(base_env=base_env, endpoints=endpoints, rounds=args.wrk_rounds, seconds=args.wrk_duration)
    )
    text, rows = table(counts=counts, rates=rates, endpoints=endpoints)
    print(f"\nseed: {seed} ({' '.join(SEEDS[seed])}); place id {place}; {args.iterations} calls per endpoint\n")
    print(text)
    report = {
        "seed": seed,
        "seed_args": SEEDS[seed],
        "iterations": args.iterations,
        "minimal_instructions": round(counts[MINIMAL][MINIMAL]),
        "minimal_requests_per_s": rates.get(MINIMAL, {}).get(MINIMAL),
        "rows": rows,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
