"""Connection exhaustion (issue 23, row 1; slow, real processes): a handful of sockets must not take the site down.

gunicorn's gthread workers hand a connection to a request thread as soon as it is readable, and the thread then
reads the whole request: a client that trickles its header lines holds one of the 4 threads (2 workers x 2) for
as long as it trickles. Holding client connections is the front door's job: nginx reads each request whole
before it proxies it, so idle and trickling sockets cost it a few kB each and the app never sees them.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import free_port
from experiments.lab.appserver import AppServer, gunicorn_start
from experiments.lab.nginx import NginxSpec, nginx_argv, nginx_binary, nginx_write
from experiments.lab.procs import http_probe, start

pytestmark = pytest.mark.slow

IDLE_SOCKETS = 200
TRICKLING_SOCKETS = 50
HOLD_S = 20.0
TRICKLE_EVERY_S = 1.0
PROBE_EVERY_S = 1.0
# A probe is answered when /healthz answers within this: an orchestrator's liveness check would wait no longer.
PROBE_TIMEOUT_S = 2.0
LOAD_THREADS = 2
LOAD_PATHS = ("/places/", "/api/places/", "/")
READY_TIMEOUT_S = 60


class _Attack:
    """Idle sockets (connected, silent) and trickling ones (a request line, then a header line a second)."""

    def __init__(self, port: int, *, idle: int, trickling: int) -> None:
        self.port, self.stop = port, threading.Event()
        self.idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(idle)]
        self.threads = [threading.Thread(target=self._trickle, args=(n,), daemon=True) for n in range(trickling)]
        self.trickled = Counter[str]()
        for thread in self.threads:
            thread.start()

    def _trickle(self, n: int) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(b"GET /places/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                line = 0
                while not self.stop.wait(TRICKLE_EVERY_S):
                    sock.sendall(f"X-Slow-{n}-{line}: x\r\n".encode())
                    line += 1
                self.trickled["held to the end"] += 1
        except OSError:
            # The server gave up on it (a header timeout): it no longer holds anything.
            self.trickled["closed by the server"] += 1

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        for sock in self.idle:
            sock.close()


def _status(url: str, timeout_s: float) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (TimeoutError, OSError) as exc:
        return f"no answer ({type(exc).__name__})"


def _under_attack(base: str, port: int, *, idle: int, trickling: int) -> tuple[list[int | str], Counter, Counter]:
    """Hold the attack for HOLD_S while a prober and a light load run; (probe results, load statuses, trickled)."""
    attack = _Attack(port, idle=idle, trickling=trickling)
    probes: list[int | str] = []
    load: Counter[int | str] = Counter()
    stop = threading.Event()

    def prober() -> None:
        while not stop.is_set():
            started = time.monotonic()
            probes.append(_status(base + "/healthz", PROBE_TIMEOUT_S))
            stop.wait(max(0.0, PROBE_EVERY_S - (time.monotonic() - started)))

    def user(offset: int) -> None:
        n = offset
        while not stop.is_set():
            load[_status(base + LOAD_PATHS[n % len(LOAD_PATHS)], 10.0)] += 1
            n += 1
            stop.wait(0.05)

    workers = [threading.Thread(target=prober)] + [
        threading.Thread(target=user, args=(i,)) for i in range(LOAD_THREADS)
    ]
    try:
        time.sleep(1.0)  # every attacking socket is in place before the first probe
        for worker in workers:
            worker.start()
        time.sleep(HOLD_S)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        attack.close()
    return probes, load, attack.trickled


@contextmanager
def _app(child_env: dict[str, str], tmp_path: Path) -> Iterator[AppServer]:
    # The default shape (2 workers x 2 threads), behind a proxy or not.
    env = {**child_env, "BEHIND_PROXY": "on"}
    server = gunicorn_start(
        env=env, app_port=free_port(), metrics_port=free_port(), log_path=tmp_path / "gunicorn.log", threads=2
    )
    try:
        yield server
    finally:
        server.stop()


def _five_xx(statuses: Counter) -> int:
    return sum(n for status, n in statuses.items() if isinstance(status, int) and status >= 500)


def test_idle_and_trickling_sockets_at_the_front_door_take_nothing_down(child_env, tmp_path) -> None:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    var = Path(child_env["VAR_DIR"])
    with _app(child_env, tmp_path) as app:
        proxy_port = free_port()
        spec = NginxSpec(proxy_port, (app.app_port,), var / "static", var / "media", tmp_path / "nginx")
        base = f"http://127.0.0.1:{proxy_port}"
        nginx = start(
            nginx_argv(nginx_write(spec)),
            name="nginx",
            log_path=tmp_path / "nginx.out",
            ready=[http_probe(base + "/healthz")],
            ready_timeout_s=READY_TIMEOUT_S,
        )
        try:
            probes, load, trickled = _under_attack(base, proxy_port, idle=IDLE_SOCKETS, trickling=TRICKLING_SOCKETS)
        finally:
            nginx.stop(timeout_s=30)
    print(
        f"\nfront door, {IDLE_SOCKETS} idle + {TRICKLING_SOCKETS} trickling sockets for {HOLD_S:g} s: "
        f"probes {Counter(probes)}, load {dict(load)}, trickling {dict(trickled)}"
    )
    assert probes and all(status == 200 for status in probes), probes
    assert _five_xx(load) == 0, load
    assert sum(n for status, n in load.items() if status == 200) >= LOAD_THREADS * HOLD_S, load


def test_gunicorn_alone_loses_its_probes_to_the_same_sockets(child_env, tmp_path) -> None:
    """The limit the README states for a deployment without a proxy (`PROXY=off`, `make run`): the same attack
    straight at gunicorn. (The issue saw 8 trickling sockets do it; here 8 did not always: in one loaded run more
    than half the probes were answered, so the documented case is the front door's own attack.)"""
    with _app(child_env, tmp_path) as app:
        probes, load, trickled = _under_attack(
            app.app_url, app.app_port, idle=IDLE_SOCKETS, trickling=TRICKLING_SOCKETS
        )
    answered = sum(1 for status in probes if status == 200)
    print(
        f"\ngunicorn alone, {IDLE_SOCKETS} idle + {TRICKLING_SOCKETS} trickling sockets for {HOLD_S:g} s: "
        f"{answered} of {len(probes)} "
        f"probes answered within {PROBE_TIMEOUT_S:g} s, load {dict(load)}, trickling {dict(trickled)}"
    )
    assert probes and answered < len(probes) / 2, probes
