"""Start and stop the app under gunicorn.conf.py as a child process (tests and the overhead benchmark)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
READY_TIMEOUT_S = 30.0


@dataclass
class GunicornProcess:
    process: subprocess.Popen[bytes]
    app_port: int
    metrics_port: int
    log_path: Path
    workers: int
    _log_handle: object = field(repr=False, default=None)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def worker_pids(self) -> list[int]:
        """The master's live children, read from /proc (Linux)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is the state, fields[1] the parent pid; zombies are not serving anyone.
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                pids.append(int(entry.name))
        return sorted(pids)

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the master and its live workers."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in [self.process.pid, *self.worker_pids()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # utime and stime are fields 14 and 15 of stat, i.e. 12 and 13 after the ")".
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_handle is not None:
            self._log_handle.close()  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    """A bare TCP connect: an HTTP probe would itself be counted in the request metrics."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - local http URL
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def gunicorn_start(
    *,
    env: dict[str, str],
    app_port: int,
    metrics_port: int,
    log_path: Path,
    workers: int = 2,
    threads: int = 1,
    worker_connections: int | None = None,
) -> GunicornProcess:
    """gunicorn -c gunicorn.conf.py chowist.wsgi:application, returned once every worker has booted."""
    child_env = {
        **env,
        "APP_HOST": "127.0.0.1",
        "APP_PORT": str(app_port),
        "APP_METRICS_PORT": str(metrics_port),
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
    }
    if worker_connections is not None:
        child_env["GUNICORN_WORKER_CONNECTIONS"] = str(worker_connections)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(log_path, "ab")  # noqa: SIM115 - closed by stop()
    process = subprocess.Popen(
        [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "chowist.wsgi:application"],
        cwd=ROOT,
        env=child_env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    server = GunicornProcess(process, app_port, metrics_port, log_path, workers, handle)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        if len(server.worker_pids()) >= workers and _accepts(app_port) and _answers(server.metrics_url):
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn not ready within {READY_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")
