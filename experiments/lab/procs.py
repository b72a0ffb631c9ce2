"""The one process launcher of the lab, the benchmarks and the tests: start, wait until ready, stop, clean up.

    proc = start(argv, name="prometheus", log_path=tmp / "prometheus.log", env=env,
                 ready=[http_probe(f"{url}/-/ready")], ready_timeout_s=30)
    ...
    proc.stop()                  # SIGTERM to the whole group, SIGKILL after stop_timeout_s; returns the exit code

Every process leads its own session, so stopping it signals the whole group (gunicorn's workers, pgbouncer
under another user) and nothing is left behind. stdout and stderr go to `log_path` (appended). With
`pid_file`, the pid and the kernel's start time of the process are recorded so another command can find it
again (`Process.from_pid_file`) and a recycled pid is never taken for ours.

Stdlib only: the app's tests, the benchmarks and the lab all import it without importing each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

LOCALHOST = "127.0.0.1"
POLL_S = 0.1
READY_POLL_S = 0.05
PROBE_TIMEOUT_S = 2.0
DEFAULT_READY_TIMEOUT_S = 30.0
# gunicorn's graceful stop waits for in-flight requests; longer than this means something is stuck.
DEFAULT_STOP_TIMEOUT_S = 15.0
# After SIGKILL the kernel needs a moment to tear the group down; it never takes this long.
KILL_WAIT_S = 5.0
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 64 * 1024

# A readiness check: (True, "") when ready, else (False, what is wrong).
Probe = Callable[[], tuple[bool, str]]


class ProcessError(RuntimeError):
    """A process exited or did not become ready; the message names it and ends with the tail of its log."""


# --- ports and probes ---------------------------------------------------------------------------------
def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def http_ok(url: str, *, any_status: bool = False, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(True, "") when `url` answers 200 (any HTTP status with `any_status`); otherwise (False, what went wrong)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - our own http://127.0.0.1 URLs
            ok = any_status or response.status == 200
            return ok, "" if ok else f"{url} answered {response.status}"
    except urllib.error.HTTPError as exc:
        if any_status:
            return True, ""
        body = exc.read(300).decode(errors="replace").strip()
        return False, f"{url} answered {exc.code} {body}".strip()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url} unreachable: {reason}"


def tcp_ok(host: str, port: int, *, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """A bare TCP connect (an HTTP probe of the app would itself be counted in its request metrics)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, ""
    except OSError as exc:
        return False, f"{host}:{port} unreachable: {exc}"


def http_probe(url: str, *, any_status: bool = False, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    return lambda: http_ok(url, any_status=any_status, timeout_s=timeout_s)


def tcp_probe(port: int, host: str = LOCALHOST, *, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    return lambda: tcp_ok(host, port, timeout_s=timeout_s)


def log_probe(path: Path, text: str) -> Probe:
    """Ready once `text` appears in the log (for processes that announce themselves rather than listen)."""

    def probe() -> tuple[bool, str]:
        try:
            found = text in path.read_text(errors="replace")
        except FileNotFoundError:
            found = False
        return found, "" if found else f"{text!r} not yet in {path}"

    return probe


# --- /proc ----------------------------------------------------------------------------------------------
def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses): field 3 onwards."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone or a zombie."""
    stat = _stat_fields(pid)
    if stat is None or stat[0] in {"Z", "X"}:
        return None
    return int(stat[19])


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid` (the leader and everything it forked)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat_fields(entry.name)
            if stat is not None and stat[0] not in {"Z", "X"} and int(stat[2]) == pgid:
                members.append(int(entry.name))
    return members


def children_of(pid: int) -> list[int]:
    """Live direct children of `pid` (gunicorn's workers of its master), sorted."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat_fields(entry.name)
            if stat is not None and stat[0] not in {"Z", "X"} and int(stat[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - LOG_TAIL_BYTES))
            return "\n".join(deque(handle.read().decode(errors="replace").splitlines(), maxlen=lines))
    except FileNotFoundError:
        return ""


# --- processes ------------------------------------------------------------------------------------------
@dataclass
class Process:
    """A process started by `start` (then `popen` is set) or found again from its pid file."""

    name: str
    argv: list[str]
    pid: int
    start_ticks: int
    started_at: float
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    killed: bool = False  # the last stop() had to SIGKILL

    def alive(self) -> bool:
        return start_ticks(self.pid) == self.start_ticks

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited (only known for a process this one started)."""
        return self.popen.poll() if self.popen is not None else None

    def children(self) -> list[int]:
        return children_of(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the process and its live children."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in [self.pid, *self.children()]:
            stat = _stat_fields(pid)
            if stat is not None:
                # utime and stime are fields 14 and 15 of stat, i.e. 12 and 13 after the command name.
                total += (int(stat[11]) + int(stat[12])) / ticks
        return total

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.log_path, lines)

    def failure(self, problem: str) -> ProcessError:
        log = self.tail()
        return ProcessError(f"{self.name}: {problem}" + (f"\nlast lines of {self.log_path}:\n{log}" if log else ""))

    def wait_ready(
        self, probes: Iterable[Probe], *, timeout_s: float = DEFAULT_READY_TIMEOUT_S, poll_s: float = READY_POLL_S
    ) -> None:
        """Return once every probe passes; raise ProcessError when the process exits first or time runs out."""
        probes = list(probes)
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.alive():
                code = self.returncode
                raise self.failure(f"exited{f' with {code}' if code is not None else ''} before it was ready")
            problems = [detail for ok, detail in (probe() for probe in probes) if not ok]
            if not problems:
                return
            if time.monotonic() > deadline:
                raise self.failure(f"not ready within {timeout_s:g} s: {'; '.join(problems)}")
            time.sleep(poll_s)

    def wait(self, timeout_s: float) -> int | None:
        """Wait for the process to exit by itself; its exit code (None when not started here)."""
        if self.popen is not None:
            return self.popen.wait(timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        while self.alive():
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.argv, timeout_s)
            time.sleep(POLL_S)
        return None

    def stop(self, *, timeout_s: float = DEFAULT_STOP_TIMEOUT_S, sig: int = signal.SIGTERM) -> int | None:
        """`sig` to the whole process group, wait up to `timeout_s`, then SIGKILL what is left.

        Returns the exit code (None when not started here); `killed` says whether SIGKILL was needed.
        Stopping a stopped process is harmless.
        """
        self.killed = False
        pgid = self.pid
        if self.alive() or group_members(pgid):
            _signal_group(pgid, sig)
            if not self._wait_group_gone(timeout_s):
                self.killed = True
                _signal_group(pgid, signal.SIGKILL)
                self._wait_group_gone(KILL_WAIT_S)
        if self.popen is not None:
            # A multi-threaded leader whose main thread has exited shows as a zombie while its other threads
            # finish, and cannot be waited for until they have: the group looks gone before the exit code exists.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=KILL_WAIT_S)
        self._reap()
        return self.returncode

    def _wait_group_gone(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            self._reap()
            if not group_members(self.pid):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)

    def _reap(self) -> None:
        # A child of this very process stays a zombie (and its group alive) until waited for.
        if self.popen is not None:
            self.popen.poll()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)

    def write_pid_file(self, path: Path) -> None:
        record = {"pid": self.pid, "start_ticks": self.start_ticks, "argv": self.argv, "started_at": self.started_at}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)

    @classmethod
    def from_pid_file(cls, path: Path, *, name: str, log_path: Path) -> Process | None:
        """The process a pid file records (alive or not), or None when there is no readable pid file."""
        try:
            data = json.loads(path.read_text())
            return cls(
                name,
                list(data["argv"]),
                int(data["pid"]),
                int(data["start_ticks"]),
                float(data["started_at"]),
                log_path,
            )
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def __enter__(self) -> Process:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def log_cap(path: Path, max_bytes: int) -> bool:
    """Keep `path` under `max_bytes` (0: no cap): past it, its content goes to `<path>.1` (the one older
    generation, replaced) and it is emptied in place. True when it was capped.

    Copy-and-truncate rather than rename, so it is safe while processes write to it: every log the launcher
    gives a child is opened in append mode, so their next write lands at the new end of the same file (lines
    written during the copy itself can be lost; a log is not a ledger). Log tailers see a truncation and start
    over from the top."""
    try:
        if max_bytes <= 0 or path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    older = path.with_name(path.name + ".1")
    with path.open("rb") as source, older.open("wb") as target:
        while chunk := source.read(1 << 20):
            target.write(chunk)
    os.truncate(path, 0)
    return True


def start(
    argv: list[str],
    *,
    log_path: Path,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ready: Iterable[Probe] = (),
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    pid_file: Path | None = None,
    user: str | None = None,
    banner: bool = False,
    log_max_bytes: int = 0,
) -> Process:
    """Start `argv` in its own session, output appended to `log_path`; return once every `ready` probe passes.

    `env` is the child's whole environment (default: this one's). When a probe does not pass within
    `ready_timeout_s`, or the process exits first, the process group is stopped and ProcessError raised.
    `banner` writes a `--- <time> start: <argv>` line to the log first (logs shared by many starts);
    `log_max_bytes` caps the log first (`log_cap`), so a log shared by many starts does not grow forever.
    """
    name = name or Path(argv[0]).name
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_cap(log_path, log_max_bytes)
    with log_path.open("ab") as log:
        if banner:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} start: {' '.join(argv)}\n".encode())
            log.flush()
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env),
            cwd=cwd,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    process = Process(name, list(argv), popen.pid, start_ticks(popen.pid) or 0, time.time(), log_path, popen)
    if pid_file is not None:
        process.write_pid_file(pid_file)
    probes = list(ready)
    if probes:
        try:
            process.wait_ready(probes, timeout_s=ready_timeout_s)
        except BaseException:
            process.stop()
            raise
    return process


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
