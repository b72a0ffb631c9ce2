"""`python -m experiments.run` end to end on the embedded profile: a real lab, real Locust, real Prometheus.

Free ports and a temporary LAB_DIR/VAR_DIR/REPORTS_DIR, so these run beside a developer's lab.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port
from experiments.lab import LabConfig
from experiments.runner.config import ROOT
from experiments.runner.plots import png_valid
from experiments.runner.results import CONTRACT_KEYS, VARIANT_KEYS

pytestmark = pytest.mark.slow

BINARIES = ("prometheus", "prometheus-alertmanager")
# Lab start-up, seed, a 30 s load, the drain and the report: well inside this on the 2-core box.
RUN_TIMEOUT_S = 420
# fault-5xx scaled to a 45 s load: the fault at 6 s, the page alert expected by 42 s.
FAULT_TIME_SCALE = "0.6"


def _run(tmp_path: Path, name: str, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make system-deps installs the Debian packages)")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(
        {
            "LAB_DIR": str(tmp_path / "lab"),
            "VAR_DIR": str(tmp_path / "var"),
            "REPORTS_DIR": str(tmp_path / "reports"),
            "LAB_PROFILE": "embedded",
            "LAB_WINDOW_SET": "lab",
            "PYTHONPATH": str(ROOT),
        }
    )
    ports = {
        "app_port": "APP_PORT",
        "app_metrics_port": "APP_METRICS_PORT",
        "consumer_metrics_port": "CONSUMER_METRICS_PORT",
        "prometheus_port": "PROMETHEUS_PORT",
        "alertmanager_port": "ALERTMANAGER_PORT",
        "webhook_port": "WEBHOOK_PORT",
        "pgbouncer_port": "PGBOUNCER_PORT",
        "proxy_port": "LAB_PROXY_PORT",
        "nginx_status_port": "NGINX_STATUS_PORT",
        "replica_port": "LAB_REPLICA_PORT",
        "postgres_exporter_port": "POSTGRES_EXPORTER_PORT",
        "replica_exporter_port": "REPLICA_EXPORTER_PORT",
        "redis_exporter_port": "REDIS_EXPORTER_PORT",
        "nginx_exporter_port": "NGINX_EXPORTER_PORT",
        "mtail_port": "MTAIL_PORT",
        "process_exporter_port": "PROCESS_EXPORTER_PORT",
    }
    assert set(ports) == set(LabConfig.port_fields())
    env.update({var: str(free_port()) for var in ports.values()})
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.run", name, "--down", *extra],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    return proc, tmp_path / "reports"


def _results(proc: subprocess.CompletedProcess, reports: Path) -> tuple[dict, Path]:
    latest = reports / "latest"
    assert latest.is_symlink(), f"no reports/latest; runner output:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    run_dir = latest.resolve()
    return json.loads((run_dir / "results.json").read_text()), run_dir


def test_smoke_runs_end_to_end_and_its_results_hold(tmp_path: Path) -> None:
    proc, reports = _run(tmp_path, "smoke")
    results, run_dir = _results(proc, reports)
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert set(CONTRACT_KEYS) <= results.keys()
    assert results["experiment"] == "smoke" and results["profile"] == "embedded" and results["passed"]
    (variant,) = results["variants"]
    assert set(VARIANT_KEYS) <= variant.keys()
    assert variant["requests"] > 0
    latency = variant["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert variant["interactions_sent"] > 0
    assert variant["interactions_sent"] == variant["interactions_recorded"]
    (agreement,) = variant["prometheus_agreement"]
    assert agreement["passed"], agreement
    assert abs(agreement["prometheus_requests"] - agreement["locust_requests"]) <= agreement["tolerance"]
    assert agreement["rps_diff"] <= 0.02
    assert set(variant["slo"]) == {"availability", "latency", "freshness"}
    assert all(x["passed"] for x in results["expectations"])
    assert results["plots"]
    for plot in results["plots"]:
        assert png_valid(run_dir / plot), plot
    report = (run_dir / "report.md").read_text()
    assert "PASSED" in report and "Prometheus against Locust" in report
    assert list((run_dir / "locust").glob("*_stats.csv")) and list((run_dir / "locust").glob("*.html"))
    assert (run_dir / "logs" / "app.log").is_file()
    # The runner started the lab, so --down stopped it: nothing is left listening.
    assert not any((tmp_path / "lab").glob("*.pid")) or "stopping the lab" in proc.stdout


def test_fault_5xx_fires_the_availability_page_alert(tmp_path: Path) -> None:
    proc, reports = _run(tmp_path, "fault-5xx", "--time-scale", FAULT_TIME_SCALE)
    results, run_dir = _results(proc, reports)
    (variant,) = results["variants"]
    fired = {a["alertname"]: a for a in variant["alerts_fired"]}
    assert "AvailabilitySLOPageBurn" in fired, f"alerts: {variant['alerts_fired']}\n{proc.stdout[-3000:]}"
    assert fired["AvailabilitySLOPageBurn"]["severity"] == "page"
    assert variant["error_ratio_5xx"] > 0.1
    assert variant["slo"]["availability"]["burn_rate_max"] > 14.4
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    notified = [json.loads(line) for line in (run_dir / "alerts.jsonl").read_text().splitlines()]
    names = {a["labels"]["alertname"] for n in notified for a in n["payload"]["alerts"]}
    assert "AvailabilitySLOPageBurn" in names
