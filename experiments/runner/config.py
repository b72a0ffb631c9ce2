"""The runner's defaults, read from the environment in this one place (the lab's own knobs live in experiments/lab/config.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_DIR = ROOT / "experiments" / "catalogue"
LOCUST_DIR = ROOT / "experiments" / "locust"

# The lab checks itself: throughput from Locust and from Prometheus must agree this closely.
THROUGHPUT_AGREEMENT = 0.02
# How long to wait for the consumer to drain what a run enqueued before counting what was recorded.
DRAIN_TIMEOUT_S = 120.0
# How often the live progress line is refreshed.
PROGRESS_INTERVAL_S = 2.0
# Bytes of each process log copied into a report (the tail: the run is at the end).
LOG_TAIL_BYTES = 2 * 1024 * 1024
# Slowest root spans listed in the report.
SLOWEST_TRACES = 10


def _float(name: str, raw: str | None, default: float) -> float:
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class RunnerConfig:
    reports_dir: Path
    # Scales every duration and schedule time of an experiment (tests and quick looks use < 1).
    time_scale: float

    @classmethod
    def from_env(cls) -> RunnerConfig:
        reports = os.environ.get("REPORTS_DIR", "").strip()
        return cls(
            reports_dir=Path(reports).resolve() if reports else ROOT / "reports",
            time_scale=_float("EXPERIMENT_TIME_SCALE", os.environ.get("EXPERIMENT_TIME_SCALE"), 1.0),
        )
