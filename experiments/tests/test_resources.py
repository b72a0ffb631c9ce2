"""Resource sampling for the soak: real processes, real files."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from experiments.runner.resources import resource_growth, resource_sample


def test_a_process_tree_is_sampled_with_its_children(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "mp").mkdir()
        for i in range(3):
            (tmp_path / "mp" / f"counter_{i}.db").write_bytes(b"x")
        (tmp_path / "spans.jsonl").write_bytes(b"y" * 2**20)
        sample = resource_sample(
            pids={"me": os.getpid()},
            since=time.time() - 5,
            multiproc_dir=tmp_path / "mp",
            files={"spans": tmp_path / "spans.jsonl"},
        )
        assert sample.rss_mb["me"] > 10 and sample.open_files["me"] > 3
        assert sample.multiproc_files == 3
        assert sample.files_mb["spans"] == 1.0
        assert 4 < sample.t_s < 60
    finally:
        child.kill()
        child.wait()


def test_growth_is_measured_from_the_first_sample_after_warm_up():
    samples = [
        {"t_s": 0, "rss_mb": {"app": 50.0}, "open_files": {"app": 10}, "multiproc_files": 2, "files_mb": {}},
        {"t_s": 300, "rss_mb": {"app": 100.0}, "open_files": {"app": 20}, "multiproc_files": 4, "files_mb": {}},
        {"t_s": 900, "rss_mb": {"app": 105.0}, "open_files": {"app": 21}, "multiproc_files": 4, "files_mb": {}},
    ]
    growth = resource_growth(samples, from_s=300)
    assert growth["rss_growth_pct"] == {"app": 5.0}
    assert growth["open_files_growth"] == {"app": 1}
    assert growth["multiproc_files_max"] == 4


def test_cpu_cores_follow_a_restarted_component_and_the_machine() -> None:
    from experiments.runner.resources import cpu_cores

    def sample(t_s: float, app_cpu: float, app_pid: int, machine: float) -> dict:
        return {
            "t_s": t_s,
            "cpu_s": {"app": app_cpu, "worker": t_s * 0.1},
            "pids": {"app": app_pid, "worker": 7},
            "machine_busy_cpu_s": machine,
        }

    # 10 s: the app uses 0.5 core, restarts at 10-20 s (new pid, counters from 0: 2 s since its start).
    samples = [
        sample(0, 100.0, 1, 1000.0),
        sample(10, 105.0, 1, 1015.0),
        sample(20, 2.0, 2, 1030.0),
        sample(30, 7.0, 2, 1045.0),
    ]
    cpu = cpu_cores(samples)
    assert cpu["components"] == {"app": 0.4, "worker": 0.1}
    assert cpu["machine"] == 1.5 and cpu["from_s"] == 0 and cpu["to_s"] == 30
    assert cpu_cores(samples[:1]) == {}
