"""The lab's logs are capped: at every start, and while their processes write to them (nothing grows forever)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from experiments.lab.procs import log_cap, start
from experiments.lab.webhook import logs_cap_forever

# A child that appends a numbered 100-byte line every millisecond to its stdout (the log the launcher gives it).
WRITER = "import itertools, sys, time\nfor n in itertools.count():\n    print(f'{n:>99}', flush=True)\n    time.sleep(0.001)\n"


def _wait_size(path: Path, at_least: int) -> None:
    deadline = time.monotonic() + 20
    while path.stat().st_size < at_least:
        assert time.monotonic() < deadline, f"{path} never reached {at_least} bytes"
        time.sleep(0.01)


def test_a_log_is_capped_while_its_process_writes_and_the_writes_go_on_at_the_top(tmp_path: Path) -> None:
    log = tmp_path / "writer.log"
    with start([sys.executable, "-c", WRITER], name="writer", log_path=log):
        _wait_size(log, 20_000)
        assert log_cap(log, 10_000) is True
        _wait_size(log, 2_000)
    older = log.with_name("writer.log.1")
    assert older.stat().st_size >= 20_000
    text = log.read_bytes()
    # Append mode: after the truncation the writer's lines start at byte 0 (no hole of NULs up to its old
    # offset, no torn file) and carry on from where the older generation ended.
    assert not text.startswith(b"\0")
    first_after = int(text.splitlines()[0])
    last_before = int(older.read_bytes().splitlines()[-1])
    assert first_after > last_before
    assert log_cap(log, 0) is False, "0 means never capped"
    assert log_cap(tmp_path / "absent.log", 10) is False


def test_start_caps_a_log_shared_by_many_starts(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"old line\n" * 2_000)
    start([sys.executable, "-c", "print('new start')"], log_path=log, log_max_bytes=1_000).wait(timeout_s=10)
    assert log.read_text() == "new start\n"
    assert log.with_name("app.log.1").read_bytes() == b"old line\n" * 2_000
    start([sys.executable, "-c", "print('again')"], log_path=log, log_max_bytes=1_000).wait(timeout_s=10)
    assert log.read_text() == "new start\nagain\n", "under the cap: appended, not rotated"


def test_the_webhook_keeps_every_lab_log_capped(tmp_path: Path) -> None:
    logs = {name: tmp_path / f"{name}.log" for name in ("app", "worker")}
    logs["app"].write_bytes(b"x" * 5_000)
    logs["worker"].write_bytes(b"y" * 500)
    (tmp_path / "alerts.jsonl").write_bytes(b"z" * 5_000)
    stop = threading.Event()
    capper = threading.Thread(
        target=logs_cap_forever, args=(tmp_path, 1_000), kwargs={"interval_s": 0.01, "stop": stop}
    )
    capper.start()
    try:
        deadline = time.monotonic() + 10
        while logs["app"].stat().st_size:
            assert time.monotonic() < deadline, "the app log was never capped"
            time.sleep(0.01)
        logs["worker"].write_bytes(b"y" * 5_000)
        while logs["worker"].stat().st_size:
            assert time.monotonic() < deadline, "a log that grew later was never capped"
            time.sleep(0.01)
    finally:
        stop.set()
        capper.join(timeout=5)
    assert not capper.is_alive()
    assert (tmp_path / "alerts.jsonl").stat().st_size == 5_000, "only *.log files are capped"
