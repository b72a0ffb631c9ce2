"""Serving the app's metrics from the gunicorn master, off the public port.

Workers only write mmap files into the multiprocess directory; the master reads and merges them on every
scrape, so a scrape never depends on which worker answers and a dead worker's counts are kept.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import struct
import threading
import time
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, multiprocess, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.mmap_dict import MmapedDict


def multiprocess_dir_reset(*, path: Path) -> None:
    """Empty the directory at start: files left by a previous run would otherwise be summed in."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


# The master's scrapes and its folding of dead workers' files into the archive never overlap.
_files_lock = threading.Lock()
# Where dead workers' values go: "<type>_archive.db", read by the collector like any worker's file.
ARCHIVE_SUFFIX = "archive"
# Sums across processes, so a dead worker's share folds into one file (gauges describe live processes).
_ARCHIVED_KINDS = frozenset({"counter", "histogram", "summary"})
# A worker creates its file empty and sizes it a moment later; a file this short holds no values yet.
_MMAP_HEADER_BYTES = 8
_COLLECT_ATTEMPTS = 5


class WorkerFilesCollector(multiprocess.MultiProcessCollector):
    """prometheus-client's multiprocess collector, safe against workers being born or buried mid-scrape.

    Without this, a scrape that lands while a new worker is creating its file fails with a struct.error
    (HTTP 500), and one that races mark_process_dead with FileNotFoundError.
    """

    def collect(self):  # type: ignore[no-untyped-def]
        # Never between a dead worker's values moving into the archive and its files going away (double counts).
        with _files_lock:
            return self._collect()

    def _collect(self):  # type: ignore[no-untyped-def]
        for attempt in range(_COLLECT_ATTEMPTS):
            files = [f for f in glob.glob(os.path.join(self._path, "*.db")) if _has_header(f)]
            try:
                return self.merge(files, accumulate=True)
            except (struct.error, FileNotFoundError):
                if attempt == _COLLECT_ATTEMPTS - 1:
                    raise
                time.sleep(0.01)
        return []


def _has_header(filename: str) -> bool:
    try:
        return os.path.getsize(filename) >= _MMAP_HEADER_BYTES
    except FileNotFoundError:
        return False


# /proc/<pid>/stat fields (after the command's closing parenthesis, 0-based from the state field).
_PPID, _UTIME, _STIME, _CUTIME, _CSTIME, _RSS = 1, 11, 12, 13, 14, 21
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _proc_stat(pid: int | str, proc: Path) -> list[str] | None:
    try:
        raw = (proc / str(pid) / "stat").read_text()
    except OSError:  # gone between listing and reading, or not Linux
        return None
    return raw[raw.rfind(")") + 2 :].split()


class ProcessTreeCollector:
    """process_cpu_seconds_total and process_resident_memory_bytes of the master and its workers together.

    prometheus-client's process collector describes one process, and the multiprocess registry has none at all: the
    app's job showed no CPU, though its workers do all the work (issue 21: the CPU panel showed only the consumer).
    The master's own times include its reaped children's (cutime/cstime), so a worker that died and was replaced
    keeps its CPU in the sum: the counter never goes down. Linux /proc only; elsewhere nothing is exported.
    """

    def __init__(self, *, pid: int | None = None, proc: Path = Path("/proc")) -> None:
        self.pid = pid or os.getpid()
        self.proc = proc

    def _children(self) -> list[list[str]]:
        children = []
        for entry in os.scandir(self.proc):
            if entry.name.isdigit():
                fields = _proc_stat(entry.name, self.proc)
                if fields is not None and fields[_PPID] == str(self.pid):
                    children.append(fields)
        return children

    def collect(self):  # type: ignore[no-untyped-def]
        master = _proc_stat(self.pid, self.proc)
        if master is None:
            return []
        children = self._children()
        ticks = sum(int(master[i]) for i in (_UTIME, _STIME, _CUTIME, _CSTIME))
        ticks += sum(int(child[i]) for child in children for i in (_UTIME, _STIME))
        pages = int(master[_RSS]) + sum(int(child[_RSS]) for child in children)
        cpu = CounterMetricFamily(
            "process_cpu_seconds",
            "User and system CPU seconds of the master and its workers.",
            value=ticks / _CLOCK_TICKS,
        )
        rss = GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory of the master and its workers.", value=pages * _PAGE_SIZE
        )
        return [cpu, rss]


def multiprocess_registry(*, path: Path) -> CollectorRegistry:
    registry = CollectorRegistry()
    WorkerFilesCollector(registry, path=str(path))
    registry.register(ProcessTreeCollector())
    return registry


def metrics_server_start(*, path: Path, addr: str, port: int) -> WSGIServer:
    """Serve /metrics on addr:port from a daemon thread of the calling (master) process."""
    server, _thread = start_http_server(port, addr=addr, registry=multiprocess_registry(path=path))
    return server


def worker_dead_mark(*, pid: int, path: Path) -> None:
    """Drop a dead worker's live gauges (in-progress, build info) and fold its counters and histograms into one
    archive file per type, so totals never go down and restarted workers' files do not pile up (every scrape
    reads every file: a few hundred dead workers' files made scrapes slower and slower)."""
    multiprocess.mark_process_dead(pid, str(path))
    with _files_lock:
        for filename in glob.glob(os.path.join(path, f"*_{pid}.db")):
            kind = os.path.basename(filename).rsplit("_", 1)[0]
            if kind in _ARCHIVED_KINDS:
                _archive_add(source=filename, archive=os.path.join(path, f"{kind}_{ARCHIVE_SUFFIX}.db"))
            # Other gauges of a dead process (livesum/liveall/livemax...) were removed above; "all"/"max"/... modes
            # describe processes, and a dead one has nothing left to say.
            with contextlib.suppress(FileNotFoundError):
                os.remove(filename)


def _archive_add(*, source: str, archive: str) -> None:
    values = list(MmapedDict.read_all_values_from_file(source))
    store = MmapedDict(archive)
    try:
        for key, value, timestamp, _pos in values:
            current, _ = store.read_value(key)
            store.write_value(key, current + value, timestamp)
    finally:
        store.close()
