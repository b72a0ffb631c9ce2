"""Queue benchmark: interactions accepted/s at the API, drained/s by the consumer, and lag at a fixed rate.

For each backend (huey on SQLite, huey on Redis) it starts the real app (gunicorn, gunicorn.conf.py) and the
real consumer (`manage.py run_huey`) on free ports with their own VAR_DIR, and talks to them only over HTTP,
the CLI and the consumer's metrics endpoint:

1. accept: the consumer is stopped; wrk (or a Python closed loop when wrk is missing) POSTs interactions
   for --accept-seconds. accepted/s = 202 answers / elapsed. This also builds the backlog for step 2.
2. drain: the consumer starts; drained/s = backlog / time from the first counted row to an empty inbox,
   read from the consumer's interactions-recorded counter and inbox backlog (names: monitoring/config.py).
3. lag: the consumer restarts (fresh histograms); an open-loop generator offers --rate interactions/s for
   --lag-seconds; `manage.py queue_status --json` then gives the accepted -> counted lag of exactly those
   rows (from the inbox) and the enqueue -> start job lag (from the consumer's histogram).
4. idle: after the queue has been idle long enough for the SQLite consumer's polling to back off fully, one
   interaction at a time, its accepted -> counted lag.

Targets (issue 3, 2-core machine): drain >= 2000/s on Redis, >= 1000/s on SQLite; lag p99 < 1 s at 500/s.

    .venv/bin/python -m experiments.bench.queue_bench [--backends sqlite,redis] [--rate 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from experiments.lab.appserver import consumer_start, gunicorn_argv, manage_argv
from experiments.lab.procs import Process, free_port, http_probe, start
from monitoring.config import CONFIG

ROOT = Path(__file__).resolve().parents[2]

BACKENDS = ("sqlite", "redis")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
DEFAULT_RATE = 500.0
DEFAULT_ACCEPT_S = 20.0
DEFAULT_LAG_S = 15.0
DEFAULT_PLACES = 50
DEFAULT_IDLE_SAMPLES = 3
# Long enough for huey's SQLite polling (0.05 s x 1.15^n) to reach its max_delay cap.
IDLE_WAIT_S = 5.0
WRK_THREADS = 2
WRK_CONNECTIONS = 16
PACED_THREADS = 16
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 300.0
POLL_S = 0.02
KINDS = ("view", "like", "bookmark")
TARGETS = {"drain_per_s": {"sqlite": 1000.0, "redis": 2000.0}, "lag_p99_s": 1.0}
# Below this share of the offered rate, the app (not the queue) was the bottleneck: no lag verdict.
ACHIEVED_SHARE = 0.95
WORK_DIR = ROOT / "var" / "bench" / "queue"


@dataclass
class BackendResult:
    backend: str
    accepted: int = 0
    accept_elapsed_s: float = 0.0
    accepted_per_s: float = 0.0
    accept_client: str = ""
    drained: int = 0
    drain_elapsed_s: float = 0.0
    drained_per_s: float = 0.0
    offered_rate: float = 0.0
    achieved_rate: float = 0.0
    paced_sent: int = 0
    paced_errors: int = 0
    interaction_lag_s: dict[str, Any] = field(default_factory=dict)
    job_lag_s: dict[str, Any] = field(default_factory=dict)
    idle_lag_s: list[float] = field(default_factory=list)


class BenchApp:
    """The app and the consumer for one backend, started on the lab's launcher with a VAR_DIR of their own."""

    def __init__(self, *, backend: str, redis_url: str, places: int, observability: bool, work_dir: Path) -> None:
        self.backend = backend
        self.var_dir = work_dir / backend
        shutil.rmtree(self.var_dir, ignore_errors=True)
        self.var_dir.mkdir(parents=True)
        self.app_port = free_port()
        self.metrics_port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in {"PROMETHEUS_MULTIPROC_DIR", "REDIS_URL"}}
        env.update(
            {
                "VAR_DIR": str(self.var_dir),
                "DJANGO_ENV": "development",
                "DEBUG": "off",
                "LOG_LEVEL": "WARNING",
                "APP_PORT": str(self.app_port),
                "APP_METRICS_PORT": str(free_port()),
                "CONSUMER_METRICS_PORT": str(self.metrics_port),
                "PYTHONUNBUFFERED": "1",
                "OBSERVABILITY": "on" if observability else "off",
            }
        )
        if backend == "redis":
            import redis

            redis.Redis.from_url(redis_url).flushdb()
            env["REDIS_URL"] = redis_url
        self.env = env
        self.app: Process | None = None
        self.consumer: Process | None = None
        self.manage("migrate", "--noinput")
        self.manage("seed_demo", f"--places={places}", "--users=5", "--reviews=0", "--interactions=0")

    def manage(self, *args: str) -> str:
        out = subprocess.run(manage_argv(*args), cwd=ROOT, env=self.env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def start_app(self) -> None:
        # gunicorn.conf.py reads APP_PORT and the worker settings from self.env.
        self.app = start(
            gunicorn_argv(),
            name="gunicorn",
            log_path=self.var_dir / "app.log",
            env=self.env,
            cwd=ROOT,
            ready=[http_probe(f"{self.base_url}/api/places/popular/")],
            ready_timeout_s=START_TIMEOUT_S,
        )

    def start_consumer(self) -> None:
        self.consumer = consumer_start(
            env=self.env, log_path=self.var_dir / f"worker-{time.time():.0f}.log", ready_timeout_s=START_TIMEOUT_S
        )

    def stop_consumer(self) -> None:
        if self.consumer is not None:
            self.consumer.stop(timeout_s=STOP_TIMEOUT_S)
        self.consumer = None

    def stop(self) -> None:
        self.stop_consumer()
        if self.app is not None:
            self.app.stop(timeout_s=STOP_TIMEOUT_S)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def place_ids(self) -> list[int]:
        ids: list[int] = []
        for page in itertools.count(1):
            status, body = _get(f"{self.base_url}/api/places/?page={page}")
            if status != 200:
                break
            data = json.loads(body)
            ids.extend(item["id"] for item in data["results"])
            if page >= data["num_pages"]:
                break
        if not ids:
            raise RuntimeError("no places to interact with (seed_demo created none?)")
        return ids

    def consumer_sample(self) -> tuple[float, float]:
        """(interactions counted since the consumer started, inbox backlog)."""
        _, text = _get(self.metrics_url)
        recorded = backlog = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == CONFIG.metrics.interactions_recorded:
                    recorded += sample.value
                elif sample.name == CONFIG.metrics.inbox_backlog:
                    backlog = sample.value
        return recorded, backlog

    def queue_status(self, *, after: float) -> dict[str, Any]:
        """`manage.py queue_status --json`, interaction lag over rows accepted after Unix time `after`."""
        return json.loads(self.manage("queue_status", "--json", f"--after={after:.6f}"))


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local http only
        return response.status, response.read().decode()


def _wait(predicate: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(POLL_S)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def _body(kind: str) -> bytes:
    return json.dumps({"kind": kind}).encode()


# --- step 1: accepted/s ---------------------------------------------------------------------------------
WRK_SCRIPT = """
local ids = {%(ids)s}
local kinds = {"view", "like", "bookmark"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local path = "/api/places/" .. ids[math.random(#ids)] .. "/interactions/"
  return wrk.format(nil, path, nil, '{"kind": "' .. kinds[math.random(3)] .. '"}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "bad_status": %%d, "socket_errors": %%d, "duration_us": %%d}\\n',
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration))
end
"""


def accept_phase(bench: BenchApp, ids: list[int], seconds: float) -> tuple[int, float, str]:
    wrk = shutil.which("wrk")
    if wrk is None:
        sent, errors, elapsed = closed_loop(bench, ids, seconds)
        return sent - errors, elapsed, "python closed loop"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"ids": ", ".join(map(str, ids))})
    try:
        out = subprocess.run(
            [wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s", "-s", script.name, bench.base_url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    accepted = result["requests"] - result["bad_status"] - result["socket_errors"]
    return accepted, result["duration_us"] / 1e6, f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}"


def closed_loop(bench: BenchApp, ids: list[int], seconds: float) -> tuple[int, int, float]:
    deadline = time.monotonic() + seconds
    counts = {"sent": 0, "errors": 0}
    lock = threading.Lock()

    def user() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", bench.app_port, timeout=10)
        while time.monotonic() < deadline:
            ok = _post(conn, random.choice(ids), random.choice(KINDS))
            with lock:
                counts["sent"] += 1
                counts["errors"] += 0 if ok else 1

    started = time.monotonic()
    threads = [threading.Thread(target=user) for _ in range(WRK_CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["sent"], counts["errors"], time.monotonic() - started


def _post(conn: http.client.HTTPConnection, place_id: int, kind: str) -> bool:
    try:
        conn.request(
            "POST",
            f"/api/places/{place_id}/interactions/",
            body=_body(kind),
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        response.read()
        return response.status == 202
    except (OSError, http.client.HTTPException):
        conn.close()
        return False


# --- step 2: drained/s ----------------------------------------------------------------------------------
def drain_phase(bench: BenchApp, backlog: int) -> tuple[int, float]:
    """From the consumer's metrics endpoint answering (just before its workers start) to an empty inbox."""
    bench.start_consumer()
    started = time.monotonic()
    deadline = started + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        recorded, pending = bench.consumer_sample()
        if pending == 0 and recorded >= backlog:
            return int(recorded), time.monotonic() - started
        time.sleep(POLL_S)
    raise RuntimeError(f"the consumer did not drain {backlog} interactions within {DRAIN_TIMEOUT_S:g} s")


# --- step 3: lag at a fixed offered rate -------------------------------------------------------------------
def paced(bench: BenchApp, ids: list[int], rate: float, seconds: float) -> tuple[int, int, float]:
    """Open loop: request i is due at start + i / rate, whatever happened to the earlier ones."""
    total = int(rate * seconds)
    next_index = itertools.count()
    lock = threading.Lock()
    counts = {"sent": 0, "errors": 0}
    start = time.monotonic() + 0.2

    def user() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", bench.app_port, timeout=10)
        while True:
            with lock:
                i = next(next_index)
            if i >= total:
                return
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ok = _post(conn, random.choice(ids), KINDS[i % len(KINDS)])
            with lock:
                counts["sent"] += 1
                counts["errors"] += 0 if ok else 1

    threads = [threading.Thread(target=user) for _ in range(PACED_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["sent"], counts["errors"], time.monotonic() - start


def wait_drained(bench: BenchApp) -> None:
    _wait(lambda: bench.consumer_sample()[1] == 0, "the inbox to empty", timeout=DRAIN_TIMEOUT_S)


def run_backend(backend: str, args: argparse.Namespace) -> BackendResult:
    result = BackendResult(backend=backend, offered_rate=args.rate)
    bench = BenchApp(
        backend=backend,
        redis_url=args.redis_url,
        places=args.places,
        observability=args.observability == "on",
        work_dir=args.work_dir,
    )
    try:
        bench.start_app()
        ids = bench.place_ids()
        _log(f"[{backend}] accept: {args.accept_seconds:g} s with the consumer stopped")
        result.accepted, result.accept_elapsed_s, result.accept_client = accept_phase(bench, ids, args.accept_seconds)
        result.accepted_per_s = result.accepted / result.accept_elapsed_s
        backlog = bench.queue_status(after=time.time())["inbox"]["backlog"]
        _log(f"[{backend}] drain: {backlog} interactions waiting")
        result.drained, result.drain_elapsed_s = drain_phase(bench, backlog)
        result.drained_per_s = result.drained / result.drain_elapsed_s if result.drain_elapsed_s else 0.0
        bench.stop_consumer()
        bench.start_consumer()
        _log(f"[{backend}] lag: {args.rate:g}/s offered for {args.lag_seconds:g} s")
        phase_start = time.time()
        result.paced_sent, result.paced_errors, elapsed = paced(bench, ids, args.rate, args.lag_seconds)
        result.achieved_rate = (result.paced_sent - result.paced_errors) / elapsed
        wait_drained(bench)
        status = bench.queue_status(after=phase_start)
        result.interaction_lag_s = status["interaction_lag_s"]
        result.job_lag_s = (status["job_lag_s"] or {}).get("drain_interactions", {})
        _log(f"[{backend}] idle: {args.idle_samples} single interactions after {IDLE_WAIT_S:g} s of quiet")
        for _ in range(args.idle_samples):
            time.sleep(IDLE_WAIT_S)
            # A fresh connection: the idle wait outlives gunicorn's keep-alive.
            conn = http.client.HTTPConnection("127.0.0.1", bench.app_port, timeout=10)
            sent_at = time.time()
            if not _post(conn, ids[0], "view"):
                raise RuntimeError("an idle-phase interaction was not accepted")
            wait_drained(bench)
            status = bench.queue_status(after=sent_at)
            result.idle_lag_s.append(status["interaction_lag_s"]["p50"])
    finally:
        bench.stop()
    return result


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def render(results: list[BackendResult]) -> str:
    lines = [
        "| backend | accepted/s (API) | drained/s (consumer) | offered -> achieved /s | interaction lag p50 / p99 s | drain-job lag p50 / p99 s | idle lag max s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.accepted_per_s:.0f} ({r.accepted} in {r.accept_elapsed_s:.1f} s, {r.accept_client}) "
            f"| {r.drained_per_s:.0f} ({r.drained} in {r.drain_elapsed_s:.2f} s) "
            f"| {r.offered_rate:.0f} -> {r.achieved_rate:.0f} ({r.paced_errors} errors) "
            f"| {_fmt(r.interaction_lag_s.get('p50'))} / {_fmt(r.interaction_lag_s.get('p99'))} "
            f"| {_fmt(r.job_lag_s.get('p50'))} / {_fmt(r.job_lag_s.get('p99'))} "
            f"| {_fmt(max(r.idle_lag_s) if r.idle_lag_s else None)} |"
        )
    verdicts = []
    for r in results:
        drain_target = TARGETS["drain_per_s"][r.backend]
        p99 = r.interaction_lag_s.get("p99")
        if r.achieved_rate < ACHIEVED_SHARE * r.offered_rate:
            lag_verdict = (
                f"NOT MEASURED (the app only took {r.achieved_rate:.0f}/s of the {r.offered_rate:.0f}/s offered)"
            )
        else:
            lag_verdict = "PASS" if p99 is not None and p99 < TARGETS["lag_p99_s"] else "FAIL"
        verdicts.append(
            f"- {r.backend}: drain {r.drained_per_s:.0f}/s vs target >= {drain_target:.0f}/s: "
            f"{'PASS' if r.drained_per_s >= drain_target else 'FAIL'}; "
            f"lag p99 {_fmt(p99)} s at {r.offered_rate:.0f}/s vs target < {TARGETS['lag_p99_s']:g} s: {lag_verdict}"
        )
    return "\n".join([*lines, "", *verdicts])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,redis")
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help=f"Redis for the redis backend (flushed; default {DEFAULT_REDIS_URL})",
    )
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="offered interactions/s in the lag step")
    parser.add_argument("--accept-seconds", type=float, default=DEFAULT_ACCEPT_S)
    parser.add_argument("--lag-seconds", type=float, default=DEFAULT_LAG_S)
    parser.add_argument("--idle-samples", type=int, default=DEFAULT_IDLE_SAMPLES)
    parser.add_argument("--places", type=int, default=DEFAULT_PLACES)
    parser.add_argument(
        "--observability",
        choices=("on", "off"),
        default="off",
        help="the app's metrics/tracing/logging middleware (default off: this measures the queue, not the middleware)",
    )
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR, help="VAR_DIR parent (emptied per backend)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    results = [run_backend(backend, args) for backend in backends]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"observability {args.observability}, offered rate {args.rate:g}/s, {os.cpu_count()} CPUs, load average {load}"
    )
    print(render(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
