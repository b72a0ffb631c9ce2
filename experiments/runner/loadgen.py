"""Locust as a headless child process: command line, live progress, its own CPU, and its results."""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from experiments.lab.procs import Process, start
from experiments.runner.config import LOCUST_DIR, ROOT

LOCUSTFILE = LOCUST_DIR / "locustfile.py"
INTERACT_NAME = "POST /api/places/[id]/interactions/"
# Requests no Django view answers: nginx serves static files itself, and without it WhiteNoise answers them before
# URL resolution (view "unmatched", which the request metrics' user-facing filter excludes).
NOT_APP_VIEWS = ("GET /static/[asset]",)
# At the end of -t Locust lets each user finish the task in flight for up to this long: as long as the app
# may take to answer (gunicorn's worker timeout), so under overload too every request issued is answered and
# counted by both sides.
STOP_TIMEOUT_S = 30
# Locust killed early (an aborted run): SIGTERM to it and its forked workers, SIGKILL after this long.
TERMINATE_TIMEOUT_S = 10


@dataclass
class Progress:
    users: int = 0
    rps: float = 0.0
    failures_per_s: float = 0.0
    requests: int = 0
    failures: int = 0


@dataclass
class LocustResult:
    requests: int
    failures: int
    # Failures that never reached the app (refused, reset): Prometheus can't have counted them.
    connection_errors: int
    throughput_rps: float
    latency_ms: dict[str, float]
    active_s: float
    started_at: float
    ended_at: float
    interactions_sent: int
    cpu_percent: float
    by_name: list[dict] = field(default_factory=list)
    exit_code: int = 0
    # The requests a Django view answered (all but NOT_APP_VIEWS): what Prometheus's user-facing count sees.
    view_requests: int | None = None
    # Locust's response-time distribution over every request: rounded milliseconds -> count (Locust keeps exact
    # ms under 100 ms, then rounds to 10 ms, and to 100 ms past a second).
    response_times: dict[int, int] = field(default_factory=dict)

    def share_within_ms(self, threshold_ms: float) -> float | None:
        """The share of requests Locust timed at or under `threshold_ms` (None with no requests)."""
        total = sum(self.response_times.values())
        if not total:
            return None
        return sum(n for ms, n in self.response_times.items() if ms <= threshold_ms) / total

    @property
    def app_view_requests(self) -> int:
        return self.requests if self.view_requests is None else self.view_requests


class LocustProcess:
    def __init__(
        self,
        *,
        host: str,
        users: int,
        spawn_rate: float,
        duration_s: float,
        mix: dict[str, int],
        wait_ms: tuple[int, int],
        processes: int,
        place_ids_file: Path,
        out_dir: Path,
        prefix: str,
    ) -> None:
        self.out_dir = out_dir
        self.prefix = prefix
        self.duration_s = duration_s
        self.users = users
        out_dir.mkdir(parents=True, exist_ok=True)
        self.csv_prefix = out_dir / prefix
        self.json_file = out_dir / f"{prefix}.json"
        self.log_file = out_dir / f"{prefix}.log"
        self.command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            host,
            "--users",
            str(users),
            "--spawn-rate",
            f"{spawn_rate:g}",
            "--run-time",
            f"{max(1, round(duration_s))}s",
            "--stop-timeout",
            str(STOP_TIMEOUT_S),
            "--csv",
            str(self.csv_prefix),
            "--html",
            str(out_dir / f"{prefix}.html"),
            "--json-file",
            str(out_dir / prefix),
            "--only-summary",
            "--exit-code-on-error",
            "0",
            "--mix",
            ",".join(f"{k}={v}" for k, v in mix.items() if v),
            "--wait-ms",
            f"{wait_ms[0]},{wait_ms[1]}",
            "--place-ids-file",
            str(place_ids_file),
        ]
        if processes > 1:
            self.command += ["--processes", str(processes)]
        self.proc: Process | None = None
        self.started_monotonic = 0.0
        self._cpu: dict[int, float] = {}

    def start(self) -> None:
        self.started_monotonic = time.monotonic()
        self.log_file.unlink(missing_ok=True)
        self.proc = start(self.command, name="locust", log_path=self.log_file, cwd=ROOT)

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def sample_cpu(self) -> None:
        """Remember the CPU seconds of Locust and its forked workers (children vanish at exit, so sample often)."""
        if not self.running():
            return
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    self._cpu[p.pid] = max(self._cpu.get(p.pid, 0.0), t.user + t.system)
                except psutil.NoSuchProcess:
                    continue
        except psutil.NoSuchProcess:
            return

    def progress(self) -> Progress:
        history = Path(f"{self.csv_prefix}_stats_history.csv")
        if not history.is_file():
            return Progress()
        last = None
        with history.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get("Name") == "Aggregated":
                    last = row
        if last is None:
            return Progress()
        return Progress(
            users=int(float(last.get("User Count") or 0)),
            rps=float(last.get("Requests/s") or 0),
            failures_per_s=float(last.get("Failures/s") or 0),
            requests=int(float(last.get("Total Request Count") or 0)),
            failures=int(float(last.get("Total Failure Count") or 0)),
        )

    def stop(self) -> None:
        if self.running():
            self.proc.stop(timeout_s=TERMINATE_TIMEOUT_S)

    def wait(self) -> LocustResult:
        while self.running():
            self.sample_cpu()
            time.sleep(0.5)
        wall = time.monotonic() - self.started_monotonic
        exit_code = self.proc.stop(timeout_s=TERMINATE_TIMEOUT_S) if self.proc else -1
        return self._result(exit_code=exit_code, wall_s=wall)

    def _result(self, *, exit_code: int, wall_s: float) -> LocustResult:
        # The JSON file is written after the users have stopped; the CSV stats can be a second stale.
        if exit_code != 0 or not self.json_file.is_file():
            tail = self.log_file.read_text()[-3000:] if self.log_file.is_file() else ""
            raise RuntimeError(f"Locust failed (exit {exit_code}); its log {self.log_file} ends:\n{tail}")
        entries = [e for e in json.loads(self.json_file.read_text()) if e.get("num_requests")]
        merged: dict[int, int] = {}
        for e in entries:
            for ms, count in e["response_times"].items():
                merged[int(float(ms))] = merged.get(int(float(ms)), 0) + count
        requests = sum(e["num_requests"] for e in entries)
        started_at = min((e["start_time"] for e in entries), default=0.0)
        ended_at = max((e["last_request_timestamp"] for e in entries), default=0.0)
        active_s = max(ended_at - started_at, 1e-9)
        return LocustResult(
            requests=requests,
            failures=sum(e["num_failures"] for e in entries),
            connection_errors=self._connection_errors(),
            throughput_rps=requests / active_s if entries else 0.0,
            latency_ms={f"p{round(q * 100)}": _percentile(merged, requests, q) for q in (0.5, 0.95, 0.99)},
            active_s=active_s,
            started_at=started_at,
            ended_at=ended_at,
            interactions_sent=sum(e["num_requests"] - e["num_failures"] for e in entries if e["name"] == INTERACT_NAME),
            cpu_percent=100.0 * sum(self._cpu.values()) / max(wall_s, 1e-9),
            by_name=[_entry_summary(e) for e in sorted(entries, key=lambda e: e["name"])],
            exit_code=exit_code,
            view_requests=sum(e["num_requests"] for e in entries if e["name"] not in NOT_APP_VIEWS),
            response_times=dict(sorted(merged.items())),
        )

    def _connection_errors(self) -> int:
        failures = Path(f"{self.csv_prefix}_failures.csv")
        if not failures.is_file():
            return 0
        with failures.open(newline="") as f:
            return sum(int(r["Occurrences"]) for r in csv.DictReader(f) if _is_connection_error(r["Error"]))


def _is_connection_error(error: str) -> bool:
    # Locust words an HTTP failure with its status code; anything else never got a response.
    return not any(marker in error for marker in ("code=", "expected 202", "HTTPError", "Server Error", "Client Error"))


def _percentile(response_times: dict[int, int], total: int, q: float) -> float:
    """Locust's own percentile over its rounded response-time histogram (importing locust here would
    monkey-patch the runner with gevent)."""
    wanted = int(total * q)
    seen = 0
    for ms in sorted(response_times, reverse=True):
        seen += response_times[ms]
        if total - seen <= wanted:
            return float(ms)
    return 0.0


def _entry_summary(entry: dict) -> dict:
    times = {int(float(ms)): n for ms, n in entry["response_times"].items()}
    n = entry["num_requests"]
    active = max(entry["last_request_timestamp"] - entry["start_time"], 1e-9)
    return {
        "name": entry["name"],
        "requests": n,
        "failures": entry["num_failures"],
        "rps": n / active,
        **{f"p{round(q * 100)}_ms": _percentile(times, n, q) for q in (0.5, 0.95, 0.99)},
    }
