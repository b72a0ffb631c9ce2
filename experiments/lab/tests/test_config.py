"""LabConfig reads the environment once and refuses what it cannot use; rendered configs pass promtool/amtool."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from experiments.lab import LabConfig, LabConfigError, render
from experiments.lab.backing import pgbouncer_url, redis_neighbour_db
from experiments.lab.config import ROOT
from experiments.lab.procs import free_port, http_probe, start


def test_defaults_environment_and_overrides() -> None:
    config = LabConfig.from_env({})
    assert (config.app_port, config.app_metrics_port, config.consumer_metrics_port) == (8000, 9101, 9102)
    assert (config.prometheus_port, config.alertmanager_port, config.webhook_port) == (9090, 9093, 9095)
    assert config.lab_dir == ROOT / "var" / "lab"
    assert (config.profile, config.window_set, config.pgbouncer) == ("embedded", "lab", False)
    assert config.services_database_url == "postgres://postgres@127.0.0.1:5432/chowist_lab"
    assert config.services_redis_url == "redis://127.0.0.1:6379/1"
    assert config.log_max_bytes == 50 * 1024 * 1024
    assert LabConfig.from_env({"LAB_LOG_MAX_MB": "0"}).log_max_bytes == 0

    env = {"APP_PORT": "18000", "LAB_DIR": "var/elsewhere", "LAB_PROFILE": "Services", "LAB_PGBOUNCER": "on"}
    config = LabConfig.from_env(env, prometheus_port=19090)
    assert (config.app_port, config.prometheus_port) == (18000, 19090)
    assert config.lab_dir == ROOT / "var" / "elsewhere"
    assert (config.profile, config.pgbouncer) == ("services", True)
    assert LabConfig.from_env(env, app_port=18001).app_port == 18001


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_PORT": "eighty"}, "not a number"),
        ({"APP_PORT": "70000"}, "not a TCP port"),
        ({"LAB_PROFILE": "cloud"}, "must be one of"),
        ({"LAB_WINDOW_SET": "weekly"}, "must be one of"),
        ({"LAB_PGBOUNCER": "maybe"}, "not a boolean"),
        ({"APP_PORT": "9090"}, "share a port"),
        ({"LAB_READY_TIMEOUT_S": "0"}, "must be positive"),
        ({"LAB_LOG_MAX_MB": "-1"}, "LAB_LOG_MAX_MB=-1 must be 0"),
        ({"LAB_PROMETHEUS_BLOCK_MINUTES": "0"}, "between 1 and 120"),
    ],
)
def test_bad_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(LabConfigError, match=message):
        LabConfig.from_env(env)


def test_unknown_override_is_refused() -> None:
    with pytest.raises(LabConfigError, match="unknown LabConfig fields: app_prot"):
        LabConfig.from_env({}, app_prot=1)


def _config(**overrides: object) -> LabConfig:
    ports = {
        "app_port": 18000,
        "app_metrics_port": 19101,
        "consumer_metrics_port": 19102,
        "prometheus_port": 19090,
        "alertmanager_port": 19093,
        "webhook_port": 19095,
    }
    return LabConfig.from_env({}, **{**ports, **overrides})


def test_prometheus_config_scrapes_the_configured_ports_with_one_window_set() -> None:
    rendered = render.prometheus_config(_config())
    targets = {job["job_name"]: job.get("static_configs") for job in rendered["scrape_configs"]}
    assert targets["chowist-app"] == [{"targets": ["127.0.0.1:19101"]}]
    assert targets["chowist-worker"] == [{"targets": ["127.0.0.1:19102"]}]
    assert targets["prometheus"] == [{"targets": ["127.0.0.1:19090"]}]
    assert rendered["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": ["127.0.0.1:19093"]}]
    assert rendered["rule_files"], "the lab must load SLO rules"
    assert all(Path(path).is_absolute() and Path(path).exists() for path in rendered["rule_files"])
    assert not any("production" in Path(path).name for path in rendered["rule_files"])
    production = render.prometheus_config(_config(window_set="production"))["rule_files"]
    assert production and not any("lab" in Path(path).name for path in production)


def test_lab_configs_differ_from_the_committed_ones_only_in_ports_and_rule_files() -> None:
    """The lab renders with the generator of prometheus/*.yml: no second copy of routing or timings."""
    committed = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    rendered = render.prometheus_config(_config())
    assert rendered["global"] == committed["global"]
    assert [job["job_name"] for job in rendered["scrape_configs"]] == [
        job["job_name"] for job in committed["scrape_configs"]
    ]
    committed_am = yaml.safe_load((ROOT / "prometheus" / "alertmanager.yml").read_text())
    rendered_am = render.alertmanager_config(_config())
    assert rendered_am["route"] == committed_am["route"]
    assert rendered_am["inhibit_rules"] == committed_am["inhibit_rules"]


def test_alertmanager_notifies_the_configured_webhook() -> None:
    rendered = render.alertmanager_config(_config())
    urls = [hook["url"] for receiver in rendered["receivers"] for hook in receiver.get("webhook_configs") or []]
    assert urls and all(url.startswith("http://127.0.0.1:19095/") for url in urls)


@pytest.mark.parametrize("window_set", ["lab", "production"])
def test_rendered_configs_pass_promtool_and_amtool(tmp_path: Path, window_set: str) -> None:
    for tool in ("promtool", "amtool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (make system-deps)")
    config = _config(window_set=window_set)
    prometheus = render.write_yaml(tmp_path / "prometheus.yml", render.prometheus_config(config))
    alertmanager = render.write_yaml(tmp_path / "alertmanager.yml", render.alertmanager_config(config))
    checked = subprocess.run(["promtool", "check", "config", str(prometheus)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = subprocess.run(["amtool", "check-config", str(alertmanager)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_cuts_blocks_as_short_as_configured(tmp_path: Path) -> None:
    """The installed Prometheus accepts the lab's (hidden) TSDB flag and runs with it."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed (make system-deps)")
    assert LabConfig.from_env({}).prometheus_block_minutes == 5
    assert LabConfig.from_env({"LAB_PROMETHEUS_BLOCK_MINUTES": "120"}).prometheus_block_minutes == 120
    config = _config(prometheus_port=free_port())
    prometheus_yml = render.write_yaml(tmp_path / "prometheus.yml", render.prometheus_config(config))
    url = f"http://127.0.0.1:{config.prometheus_port}"
    argv = [
        "prometheus",
        f"--config.file={prometheus_yml}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{config.prometheus_port}",
        *render.prometheus_storage_flags(config),
    ]
    with (
        start(argv, log_path=tmp_path / "prometheus.log", ready=[http_probe(f"{url}/-/ready")]),
        urllib.request.urlopen(f"{url}/api/v1/status/flags", timeout=10) as response,
    ):
        flags = json.load(response)["data"]
    assert flags["storage.tsdb.min-block-duration"] == "5m"


def test_pgbouncer_pools_transactions_in_front_of_the_services_database(tmp_path: Path) -> None:
    config = _config(database_url="postgres://postgres@127.0.0.1:5432/chowist_lab", pgbouncer_port=16432)
    ini = render.pgbouncer_ini(config, auth_file=tmp_path / "userlist.txt")
    assert "pool_mode = transaction" in ini
    assert "listen_port = 16432" in ini
    assert "chowist_lab = host=127.0.0.1 port=5432 dbname=chowist_lab user=postgres" in ini
    assert render.pgbouncer_userlist(config) == '"postgres" ""\n'
    url = pgbouncer_url(database_url=config.services_database_url, host="127.0.0.1", port=16432)
    assert url == "postgres://postgres@127.0.0.1:16432/chowist_lab"


def test_the_cache_never_shares_hueys_redis_database() -> None:
    assert redis_neighbour_db("redis://127.0.0.1:6379/1") == "redis://127.0.0.1:6379/2"
    assert redis_neighbour_db("redis://127.0.0.1:6379/15") == "redis://127.0.0.1:6379/14"
    assert redis_neighbour_db("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379/1"


def test_layout_settings_are_validated_and_instances_get_their_own_ports() -> None:
    config = LabConfig.from_env({"LAB_PROXY": "nginx", "APP_INSTANCES": "3"})
    assert config.instance_ports(1) == (config.app_port, config.app_metrics_port)
    ports = {config.instance_ports(n) for n in (1, 2, 3)}
    assert len({p for pair in ports for p in pair}) == 6
    assert config.public_port == config.proxy_port
    with pytest.raises(LabConfigError, match="LAB_PROXY=nginx"):
        LabConfig.from_env({"APP_INSTANCES": "2", "LAB_PROXY": "off"})
    with pytest.raises(LabConfigError, match="LAB_PROXY"):
        LabConfig.from_env({"LAB_PROXY": "haproxy"})
    with pytest.raises(LabConfigError, match="share a port"):
        LabConfig.from_env({"LAB_PROXY": "nginx", "LAB_PROXY_PORT": "8000"})


def test_nginx_is_the_front_door_unless_the_proxy_is_off() -> None:
    """The default layout serves clients through nginx (the latency SLI is measured there); PROXY=off, as the
    Makefile and LAB_PROXY spell it, is the direct path."""
    config = LabConfig.from_env({})
    assert config.proxy == "nginx" and config.public_port == config.proxy_port
    for off in ("off", "none", "OFF", "no"):
        direct = LabConfig.from_env({"LAB_PROXY": off})
        assert direct.proxy == "none" and direct.public_port == direct.app_port
