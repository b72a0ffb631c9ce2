"""The lab's resources over a run (the soak's evidence): RSS and open files per component, files that must
stay bounded (the app's multiprocess metric files, the span file, the lab's logs).

Sampled by the run loop at every progress tick; summarised per run as the growth between `from_s` seconds
into the load and its end, so start-up and warm-up (caches filling, lazy imports) are not counted as growth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "t_s": round(self.t_s, 1),
            "rss_mb": {k: round(v, 1) for k, v in self.rss_mb.items()},
            "open_files": dict(self.open_files),
            "multiproc_files": self.multiproc_files,
            "files_mb": {k: round(v, 2) for k, v in self.files_mb.items()},
        }


def process_tree_usage(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open file descriptors) of a process with all its children."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0
    rss = fds = 0
    for proc in procs:
        try:
            rss += proc.memory_info().rss
            fds += proc.num_fds()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rss / 2**20, fds


def resource_sample(
    *, pids: dict[str, int], since: float, multiproc_dir: Path, files: dict[str, Path]
) -> ResourceSample:
    rss, fds = {}, {}
    for name, pid in pids.items():
        rss[name], fds[name] = process_tree_usage(pid)
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
    )


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
