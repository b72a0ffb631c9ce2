"""The runner's defaults, read from the environment in this one place (the lab's own knobs live in experiments/lab/config.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envconfig import EnvError, env_float, env_path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_DIR = ROOT / "experiments" / "catalogue"
LOCUST_DIR = ROOT / "experiments" / "locust"

# The lab checks itself: throughput from Locust and from Prometheus must agree this closely.
THROUGHPUT_AGREEMENT = 0.02
# ... and the latency SLI's share of requests under the threshold and Locust's, this close (1 percentage point).
LATENCY_AGREEMENT = 0.01
# How long to wait for the consumer to drain what a run enqueued before counting what was recorded.
DRAIN_TIMEOUT_S = 120.0
# How often the live progress line is refreshed.
PROGRESS_INTERVAL_S = 2.0
# Bytes of each process log copied into a report (the tail: the run is at the end).
LOG_TAIL_BYTES = 2 * 1024 * 1024
# Slowest root spans listed in the report.
SLOWEST_TRACES = 10


@dataclass(frozen=True)
class RunnerConfig:
    reports_dir: Path
    # Scales every duration and schedule time of an experiment (tests and quick looks use < 1).
    time_scale: float

    @classmethod
    def from_env(cls) -> RunnerConfig:
        time_scale = env_float("EXPERIMENT_TIME_SCALE", 1.0)
        if time_scale <= 0:
            raise EnvError(f"EXPERIMENT_TIME_SCALE={time_scale!r} must be positive")
        return cls(reports_dir=env_path("REPORTS_DIR", ROOT / "reports"), time_scale=time_scale)
