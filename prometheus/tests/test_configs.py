"""Prometheus and Alertmanager configs: current, valid for promtool/amtool, routed as documented."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring.config import CONFIG
from prometheus import generate

HERE = Path(__file__).resolve().parent.parent
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
PROMETHEUS_CONFIGS = ("prometheus.yml", "prometheus.compose.yml")
ALERTMANAGER_CONFIGS = ("alertmanager.yml", "alertmanager.compose.yml")
JOBS = {"chowist-app", "chowist-worker", "prometheus", "postgres", "redis"}


def _tool(tool: str | None, package: str) -> str:
    if tool is None:
        pytest.skip(
            f"{package} is not installed (apt-get install --no-install-recommends {package}, or make system-deps)"
        )
    return tool


def _load(name: str) -> dict:
    return yaml.safe_load((HERE / name).read_text())


@pytest.mark.parametrize(("variant", "kind"), list(generate.OUTPUTS))
def test_committed_configs_are_current(variant: str, kind: str) -> None:
    name = generate.OUTPUTS[(variant, kind)]
    assert (HERE / name).read_text() == generate.render(variant=variant, kind=kind), (
        f"prometheus/{name} is stale: run `make slo` and commit"
    )


def test_committed_mtail_program_is_current() -> None:
    assert (HERE / generate.MTAIL_PROGRAM).read_text() == generate.mtail_program(), (
        f"prometheus/{generate.MTAIL_PROGRAM} is stale: run `make slo` and commit"
    )


def _access_line(uri: str, status: int, request_time: str) -> str:
    # The `chowist` log format of experiments/lab/nginx.py, as nginx writes it (escape=json).
    return (
        f'{{"time":"2026-12-07T22:00:00+00:00","request_id":"r","method":"GET","uri":"{uri}","status":{status},'
        f'"bytes":512,"request_time":{request_time},"upstream":"127.0.0.1:8000","upstream_status":"{status}",'
        f'"upstream_time":"{request_time}"}}\n'
    )


def test_mtail_times_every_response_at_the_edge_in_buckets_that_resolve_the_latency_threshold(tmp_path: Path) -> None:
    """The edge's latency histogram: nginx's $request_time, probes left out, one bucket bounded by the SLO's
    threshold and neighbours both sides (not 0.25 -> 0.5), the threshold itself counted as good (le)."""
    mtail = shutil.which("mtail")
    if mtail is None:
        pytest.skip("mtail is not installed (apt-get install mtail)")
    threshold = CONFIG.slos.latency.threshold_s
    assert threshold is not None
    buckets = CONFIG.request_buckets_s
    assert threshold in buckets
    below = max(b for b in buckets if b < threshold)
    above = min(b for b in buckets if b > threshold)
    assert threshold - below <= threshold / 4 and above - threshold <= threshold / 4
    log = tmp_path / "access.log"
    log.write_text(
        _access_line("/api/places/", 200, "0.012")
        # Under half a millisecond: a bucket must hold it too (+Inf == _count).
        + _access_line("/static/app.css", 200, "0.000")
        + _access_line("/places/1/", 200, f"{threshold:.3f}")
        + _access_line("/search/?q=%22x", 502, f"{threshold + 0.001:.3f}")
        + _access_line("/healthz", 200, "9.000")
    )
    result = subprocess.run(
        [mtail, "--progs", str(HERE / "mtail"), "--logs", str(log), "--one_shot", "--one_shot_format", "prometheus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    name = CONFIG.metrics.edge_request_duration
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in result.stdout.splitlines()
        if line.startswith(name)
    }
    assert samples[f'{name}_count{{prog="nginx.mtail"}}'] == 4
    assert samples[f'{name}_bucket{{prog="nginx.mtail",le="+Inf"}}'] == 4
    assert samples[f'{name}_bucket{{prog="nginx.mtail",le="{buckets[0]:g}"}}'] == 1
    assert samples[f'{name}_bucket{{prog="nginx.mtail",le="{threshold:g}"}}'] == 3
    assert samples[f'{name}_bucket{{prog="nginx.mtail",le="{below:g}"}}'] == 2
    assert samples[f'{name}_bucket{{prog="nginx.mtail",le="{above:g}"}}'] == 4


@pytest.mark.parametrize("name", PROMETHEUS_CONFIGS)
def test_promtool_check_config_passes_with_both_rule_files(name: str) -> None:
    promtool = _tool(PROMTOOL, "prometheus")
    result = subprocess.run([promtool, "check", "config", name], cwd=HERE, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout


@pytest.mark.parametrize("name", ALERTMANAGER_CONFIGS)
def test_amtool_check_config_passes(name: str) -> None:
    amtool = _tool(AMTOOL, "prometheus-alertmanager")
    result = subprocess.run([amtool, "check-config", name], cwd=HERE, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ALERTMANAGER_CONFIGS)
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=AvailabilitySLOPageBurn", "severity=page", "slo=availability"], "page"),
        (["alertname=LatencySLOTicketBurn", "severity=ticket", "slo=latency"], "ticket"),
        (["alertname=ChowistTargetDown", "severity=ticket", "job=redis"], "ticket"),
        (["alertname=ChowistConsumerStalled", "severity=page", "window_set=lab"], "page"),
        (["alertname=Unknown"], "ticket"),
    ],
)
def test_pages_and_only_pages_route_to_the_page_receiver(name: str, labels: list[str], receiver: str) -> None:
    amtool = _tool(AMTOOL, "prometheus-alertmanager")
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={name}", f"--verify.receivers={receiver}", *labels],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ALERTMANAGER_CONFIGS)
def test_alertmanager_groups_by_alertname_and_severity_and_posts_to_the_webhook(name: str) -> None:
    config = _load(name)
    assert config["route"]["group_by"] == ["alertname", "severity"]
    urls = {hook["url"] for r in config["receivers"] for hook in r["webhook_configs"]}
    expected = (
        "http://127.0.0.1:9095/alerts" if name == "alertmanager.yml" else "http://host.docker.internal:9095/alerts"
    )
    assert urls == {expected}
    assert all(hook["send_resolved"] for r in config["receivers"] for hook in r["webhook_configs"])


@pytest.mark.parametrize("name", PROMETHEUS_CONFIGS)
def test_prometheus_scrapes_every_5s_every_job_and_loads_both_window_sets(name: str) -> None:
    config = _load(name)
    assert config["global"]["scrape_interval"] == "5s"
    assert config["global"]["evaluation_interval"] == "5s"
    # The native lab's nginx has an exporter and mtail over its access log, and process-exporter runs only there.
    assert {job["job_name"] for job in config["scrape_configs"]} - {"nginx", "edge", "processes"} == JOBS
    assert config["rule_files"] == ["rules/slo-production.rules.yml", "rules/slo-lab.rules.yml"]
    for rule_file in config["rule_files"]:
        assert (HERE / rule_file).is_file()


def test_native_config_uses_the_contract_ports_and_file_sd_for_exporters() -> None:
    config = _load("prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["chowist-app"]["static_configs"] == [{"targets": ["127.0.0.1:9101"]}]
    assert jobs["chowist-worker"]["static_configs"] == [{"targets": ["127.0.0.1:9102"]}]
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:9090"]}]
    assert jobs["postgres"]["file_sd_configs"] == [{"files": ["targets/postgres*.json"]}]
    assert jobs["redis"]["file_sd_configs"] == [{"files": ["targets/redis*.json"]}]
    assert jobs["nginx"]["file_sd_configs"] == [{"files": ["targets/nginx*.json"]}]
    assert jobs["edge"]["file_sd_configs"] == [{"files": ["targets/edge*.json"]}]
    assert jobs["processes"]["file_sd_configs"] == [{"files": ["targets/processes*.json"]}]
    # Instances beyond the first (APP_INSTANCES) are listed by the lab.
    assert jobs["chowist-app"]["file_sd_configs"] == [{"files": ["targets/chowist-app*.json"]}]
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]


def test_compose_config_uses_service_names() -> None:
    config = _load("prometheus.compose.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["chowist-app"]["dns_sd_configs"] == [{"names": ["app"], "type": "A", "port": 9101}]
    assert jobs["chowist-worker"]["static_configs"] == [{"targets": ["worker:9102"]}]
    assert jobs["postgres"]["static_configs"] == [
        {"targets": ["postgres-exporter:9187", "postgres-replica-exporter:9187"]}
    ]
    assert jobs["redis"]["static_configs"] == [{"targets": ["redis-exporter:9121"]}]
    assert jobs["nginx"]["static_configs"] == [{"targets": ["nginx-exporter:9113"]}]
    assert jobs["edge"]["static_configs"] == [{"targets": ["mtail:3903"]}]
    # Every job the native lab can scrape, compose scrapes too.
    native = {job["job_name"] for job in _load("prometheus.yml")["scrape_configs"]}
    assert native == set(jobs)
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        generate.render(variant="kubernetes", kind="prometheus")
