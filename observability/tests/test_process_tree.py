"""The app's process_cpu_seconds_total is the gunicorn master's and its workers' together, and never goes down."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from observability.exposition import ProcessTreeCollector

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux /proc")
BUSY_S = 0.6


def _cpu(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("process_cpu_seconds_total") or 0.0


def test_a_workers_cpu_counts_while_it_lives_and_after_it_is_reaped() -> None:
    registry = CollectorRegistry()
    registry.register(ProcessTreeCollector())
    before = _cpu(registry)
    worker = subprocess.Popen([sys.executable, "-c", f"import time\nt=time.time()\nwhile time.time()-t<{BUSY_S}: pass"])
    time.sleep(BUSY_S * 0.8)
    live = _cpu(registry)
    assert live - before >= BUSY_S * 0.3, "a live worker's CPU is in the sum"
    worker.wait()
    # Reaped: its times moved into the master's cutime/cstime, so the counter kept them.
    assert _cpu(registry) >= live
    assert registry.get_sample_value("process_resident_memory_bytes") > 0
