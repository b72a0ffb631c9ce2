"""The lab's resources over a run (the soak's evidence): RSS, open files and CPU time per component, the whole
machine's busy CPU time, files that must stay bounded (the app's multiprocess metric files, the span file, the
lab's logs).

CPU is read from /proc (psutil) for each component's process tree: gunicorn's workers included, which
prometheus-client's multiprocess mode does not export (its process_cpu_seconds_total is the master's alone).

Sampled by the run loop at every progress tick; summarised per run as the growth between `from_s` seconds
into the load and its end, so start-up and warm-up (caches filling, lazy imports) are not counted as growth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import psutil


@dataclass(frozen=True)
class ResourceSample:
    t_s: float
    rss_mb: dict[str, float]
    open_files: dict[str, int]
    multiproc_files: int
    files_mb: dict[str, float]
    # Cumulative CPU seconds (user + system) of each component's live process tree, and of the whole machine.
    cpu_s: dict[str, float] = field(default_factory=dict)
    machine_busy_cpu_s: float = 0.0
    # Each component's lead pid: a new one means it restarted and its CPU counters started again.
    pids: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "t_s": round(self.t_s, 1),
            "rss_mb": {k: round(v, 1) for k, v in self.rss_mb.items()},
            "open_files": dict(self.open_files),
            "multiproc_files": self.multiproc_files,
            "files_mb": {k: round(v, 2) for k, v in self.files_mb.items()},
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
            "machine_busy_cpu_s": round(self.machine_busy_cpu_s, 2),
            "pids": dict(self.pids),
        }


def process_tree_usage(pid: int) -> tuple[float, int, float]:
    """(RSS in MiB, open file descriptors, CPU seconds) of a process with all its live children."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0, 0.0
    rss = fds = 0
    cpu = 0.0
    for proc in procs:
        try:
            rss += proc.memory_info().rss
            fds += proc.num_fds()
            times = proc.cpu_times()
            cpu += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rss / 2**20, fds, cpu


def machine_busy_cpu_s() -> float:
    """CPU seconds the whole machine spent not idle (all processes, ours and anyone else's) since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def resource_sample(
    *, pids: dict[str, int], since: float, multiproc_dir: Path, files: dict[str, Path]
) -> ResourceSample:
    rss, fds, cpu = {}, {}, {}
    for name, pid in pids.items():
        rss[name], fds[name], cpu[name] = process_tree_usage(pid)
    sizes = {}
    for name, path in files.items():
        if path.is_dir():
            sizes[name] = sum(f.stat().st_size for f in path.glob("*") if f.is_file()) / 2**20
        elif path.exists():
            sizes[name] = path.stat().st_size / 2**20
    return ResourceSample(
        t_s=time.time() - since,
        rss_mb=rss,
        open_files=fds,
        multiproc_files=len(list(multiproc_dir.glob("*.db"))) if multiproc_dir.is_dir() else 0,
        files_mb=sizes,
        cpu_s=cpu,
        machine_busy_cpu_s=machine_busy_cpu_s(),
        pids=dict(pids),
    )


def cpu_cores(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Cores used on average between the first and the last sample of a run: per lab component (its process
    tree) and by the whole machine (everything on it, the load generator and shared servers included). A
    component restarted in between (a deploy: a new lead pid) counts its new processes' CPU from their start;
    what the old ones used after the sample before is lost, so a restarted component reads a little low."""
    timed = [s for s in samples if "cpu_s" in s]
    if len(timed) < 2 or timed[-1]["t_s"] <= timed[0]["t_s"]:
        return {}
    used: dict[str, float] = dict.fromkeys(timed[0]["cpu_s"], 0.0)
    for before, after in pairwise(timed):
        for name, now in after["cpu_s"].items():
            same = before.get("pids", {}).get(name) == after.get("pids", {}).get(name)
            earlier = before["cpu_s"].get(name)
            used[name] = used.get(name, 0.0) + (now - earlier if same and earlier is not None else now)
    first, last = timed[0], timed[-1]
    span = last["t_s"] - first["t_s"]
    return {
        "from_s": first["t_s"],
        "to_s": last["t_s"],
        "components": {name: round(max(cpu, 0.0) / span, 2) for name, cpu in used.items()},
        "machine": round((last["machine_busy_cpu_s"] - first["machine_busy_cpu_s"]) / span, 2),
        "machine_cores": psutil.cpu_count() or 0,
    }


def resource_growth(samples: list[dict[str, Any]], *, from_s: float) -> dict[str, Any]:
    """Growth between the first sample at or after from_s and the last: RSS in % per component, open files and
    multiprocess files as counts (max seen too)."""
    if not samples:
        return {}
    later = [s for s in samples if s["t_s"] >= from_s] or samples[-1:]
    first, last = later[0], samples[-1]
    rss_growth = {
        name: round(100.0 * (last["rss_mb"].get(name, 0.0) - mb) / mb, 2) if mb else 0.0
        for name, mb in first["rss_mb"].items()
    }
    return {
        "from_s": round(first["t_s"], 1),
        "to_s": round(last["t_s"], 1),
        "rss_growth_pct": rss_growth,
        "open_files_growth": {name: last["open_files"].get(name, 0) - n for name, n in first["open_files"].items()},
        "open_files_max": {name: max(s["open_files"].get(name, 0) for s in samples) for name in last["open_files"]},
        "multiproc_files_max": max(s["multiproc_files"] for s in samples),
        "files_mb_last": last["files_mb"],
    }
