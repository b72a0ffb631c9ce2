"""Background processes that outlive the command that started them: pid files, liveness, stopping.

A pid file holds the pid and the kernel's start time of the process, so a recycled pid is never taken for
one of ours. Each process leads its own session, so stopping it signals the whole group (gunicorn's workers,
pgbouncer under another user) and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.1


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int
    argv: list[str]
    started_at: float


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses; the fields after the last ')' do not.
    rest = raw[raw.rfind(")") + 2 :].split()
    state, ticks = rest[0], rest[19]
    return None if state in {"Z", "X"} else int(ticks)


def is_alive(record: PidRecord) -> bool:
    return start_ticks(record.pid) == record.start_ticks


def read_pid_file(path: Path) -> PidRecord | None:
    try:
        data = json.loads(path.read_text())
        return PidRecord(int(data["pid"]), int(data["start_ticks"]), list(data["argv"]), float(data["started_at"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def spawn(
    argv: list[str],
    *,
    pid_file: Path,
    log_file: Path,
    env: dict[str, str],
    cwd: Path,
    user: str | None = None,
) -> tuple[subprocess.Popen, PidRecord]:
    """Start `argv` detached (own session), appending stdout and stderr to `log_file`; write `pid_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} start: {' '.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    ticks = start_ticks(process.pid) or 0
    record = PidRecord(process.pid, ticks, argv, time.time())
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.__dict__))
    tmp.replace(pid_file)
    return process, record


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid` (the leader and everything it forked)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()
        if rest[0] not in {"Z", "X"} and int(rest[2]) == pgid:
            members.append(int(entry.name))
    return members


def stop(record: PidRecord, *, timeout_s: float) -> bool:
    """SIGTERM the process group, wait, then SIGKILL what is left. True when it had to kill."""
    pgid = record.pid
    if not is_alive(record) and not group_members(pgid):
        return False
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not group_members(pgid):
            return False
        time.sleep(POLL_S)
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while group_members(pgid) and time.monotonic() < deadline:
        _reap(record.pid)
        time.sleep(POLL_S)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _reap(pid: int) -> None:
    # A child of this very process stays a zombie until waited for.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            return "\n".join(deque(handle.read().decode(errors="replace").splitlines(), maxlen=lines))
    except FileNotFoundError:
        return ""
