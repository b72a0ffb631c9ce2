"""The compose stack, validated without a Docker engine: docker-compose's own parser, mounts, healthchecks,
secrets, and the Prometheus/Alertmanager configs it mounts checked by promtool/amtool."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from compose import stack
from experiments.lab.procs import free_port
from monitoring.config import CONFIG

COMPOSE_DIR = Path(__file__).resolve().parents[1]
ROOT = COMPOSE_DIR.parent
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
DOCKER_COMPOSE = shutil.which("docker-compose")
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")

needs_compose = pytest.mark.skipif(
    DOCKER_COMPOSE is None,
    reason="docker-compose is not installed (apt-get install --no-install-recommends docker-compose)",
)


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER_COMPOSE
    argv = [DOCKER_COMPOSE, "--project-directory", str(COMPOSE_DIR), "--env-file", str(ENV_EXAMPLE)]
    # The shell's variables win over --env-file: the test run's own (EMAIL_URL=locmem://) must not leak in.
    env = {k: v for k, v in os.environ.items() if k != "EMAIL_URL"}
    return subprocess.run([*argv, "-f", str(COMPOSE_FILE), *args], capture_output=True, text=True, check=False, env=env)


@cache
def _resolved() -> dict[str, Any]:
    """The stack as docker-compose resolves it (anchors merged, variables substituted, paths absolute)."""
    result = _compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _services() -> dict[str, dict[str, Any]]:
    return _resolved()["services"]


def _binds(service: str) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    binds = {}
    for volume in _services()[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("/"):
            binds[target] = Path(source)
    return binds


def _host_path(service: str, container_path: str) -> Path:
    """Where a file the container sees lives in the repository, through the service's bind mounts."""
    for target, source in sorted(_binds(service).items(), key=lambda item: -len(item[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{service}: {container_path} is not bind-mounted")


@needs_compose
def test_docker_compose_config_is_valid() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


@needs_compose
def test_the_stack_has_every_required_service() -> None:
    required = {
        "nginx", "app", "worker", "postgres", "pgbouncer", "redis", "prometheus", "alertmanager", "grafana",
        "loki", "alloy", "tempo", "otel-collector", "postgres-exporter", "redis-exporter", "postgres-replica",
        "postgres-replica-exporter", "nginx-exporter", "mtail",
    }  # fmt: skip
    assert required <= set(_services())


@needs_compose
def test_every_bind_mounted_path_exists_in_the_repository() -> None:
    mounts = [(name, source) for name in _services() for source in _binds(name).values()]
    assert mounts
    missing = [f"{name}: {source}" for name, source in mounts if not source.exists()]
    assert not missing, f"mounted paths that do not exist: {missing}"
    assert all(source.resolve().is_relative_to(ROOT) for _, source in mounts), "mount only files from this repo"


@needs_compose
def test_every_service_has_a_healthcheck() -> None:
    for name, service in _services().items():
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no healthcheck"


@needs_compose
def test_the_app_scales_behind_nginx() -> None:
    services = _services()
    assert "ports" not in services["app"], "a fixed host port would stop `--scale app=N`"
    assert "container_name" not in services["app"]
    assert services["nginx"]["ports"]
    nginx_conf = _host_path("nginx", "/etc/nginx/nginx.conf").read_text()
    assert "http://app:8000" in nginx_conf
    assert "resolver 127.0.0.11" in nginx_conf, "nginx must re-resolve `app` to pick up new replicas"


@needs_compose
def test_host_ports_bind_to_localhost_only() -> None:
    for name, service in _services().items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_secrets_come_from_the_gitignored_env_file() -> None:
    text = COMPOSE_FILE.read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert {"SECRET_KEY", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= required
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    assert required <= set(example), f"missing from .env.example: {required - set(example)}"
    assert "change-me" in example["POSTGRES_PASSWORD"], "the example must not hold a real secret"
    literal = [
        value for value in re.findall(r"^\s*\w*PASSWORD\w*:\s*(\S+)", text, re.MULTILINE) if not value.startswith("${")
    ]
    assert not literal, f"passwords written into the compose file: {literal}"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(COMPOSE_DIR / ".env")], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "compose/.env must be gitignored"


@needs_compose
def test_grafana_is_provisioned_with_the_generated_dashboards() -> None:
    provider_file = _host_path("grafana", "/etc/grafana/provisioning/dashboards/chowist.yaml")
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    dashboards = _host_path("grafana", provider["options"]["path"])
    assert dashboards == ROOT / "grafana" / "dashboards"
    assert sorted(dashboards.glob("*.json"))
    home = _services()["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _host_path("grafana", home).exists()


@needs_compose
def test_grafana_datasources_point_at_compose_services() -> None:
    sources = _host_path("grafana", "/etc/grafana/provisioning/datasources/datasources.yaml")
    services = _services()
    for datasource in yaml.safe_load(sources.read_text())["datasources"]:
        host = re.match(r"https?://([\w-]+):\d+", datasource["url"])
        assert host and host.group(1) in services, f"{datasource['name']} points at {datasource['url']}"


@needs_compose
def test_logs_flow_from_app_and_worker_to_alloy_through_a_shared_volume() -> None:
    services = _services()
    log_dir = services["alloy"]["environment"]["CHOWIST_LOG_DIR"]
    for name, file_name in (("app", "app.log"), ("worker", "worker.log")):
        assert services[name]["environment"]["LOG_FILE"] == f"{log_dir}/{file_name}"
        assert any(v.startswith("chowist-logs:") and f":{log_dir}" in v for v in services[name]["volumes"])
    assert any(v.startswith(f"chowist-logs:{log_dir}") for v in services["alloy"]["volumes"])
    assert services["alloy"]["environment"]["LOKI_PUSH_URL"].startswith("http://loki:3100/")


@needs_compose
def test_traces_go_through_the_collector_to_tempo() -> None:
    services = _services()
    for name in ("app", "worker"):
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    collector = yaml.safe_load(_host_path("otel-collector", "/etc/otelcol-contrib/config.yaml").read_text())
    (exporter,) = collector["service"]["pipelines"]["traces"]["exporters"]
    assert collector["exporters"][exporter]["endpoint"] == "tempo:4317"
    assert "otlp" in collector["service"]["pipelines"]["traces"]["receivers"]
    tempo = yaml.safe_load(_host_path("tempo", "/etc/tempo/tempo.yaml").read_text())
    assert tempo["server"]["http_listen_port"] == 3200
    assert tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")


@needs_compose
@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")
def test_the_prometheus_config_compose_mounts_passes_promtool(tmp_path: Path) -> None:
    config_path = _host_path("prometheus", "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    # promtool resolves rule_files on this machine: point them at the repository files the container sees.
    rule_files = []
    for pattern in config.get("rule_files") or []:
        # Relative rule paths are relative to the config file, inside the container.
        host = _host_path("prometheus", str(Path("/etc/prometheus") / pattern))
        assert sorted(host.parent.glob(host.name)), f"rule_files {pattern} matches nothing in {host.parent}"
        rule_files.append(str(host))
    config["rule_files"] = rule_files
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    result = subprocess.run([PROMTOOL, "check", "config", str(checked)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    targets = yaml.safe_dump(config.get("scrape_configs"))
    for service in ("app", "worker"):
        assert re.search(rf"\b{service}\b", targets), f"compose Prometheus does not scrape `{service}`"


@needs_compose
@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed (apt-get install prometheus-alertmanager)")
def test_the_alertmanager_config_compose_mounts_passes_amtool() -> None:
    config_path = _host_path("alertmanager", "/etc/alertmanager/alertmanager.yml")
    result = subprocess.run([AMTOOL, "check-config", str(config_path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_compose
def test_alertmanager_can_reach_every_webhook_it_notifies() -> None:
    config = yaml.safe_load(_host_path("alertmanager", "/etc/alertmanager/alertmanager.yml").read_text())
    alertmanager = _services()["alertmanager"]
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            host = re.match(r"https?://([\w.-]+)", webhook["url"]).group(1)
            if host == "host.docker.internal":
                # The recorder runs on the host (the experiment runner's); Linux engines need the alias spelled out.
                assert "host.docker.internal:host-gateway" in alertmanager.get("extra_hosts", []), receiver["name"]
            else:
                assert host in _services(), f"{receiver['name']} notifies {webhook['url']}"


@needs_compose
def test_the_app_reads_from_a_streaming_replica_of_the_primary() -> None:
    services = _services()
    app = services["app"]["environment"]
    primary, replica = urlparse(app["DATABASE_URL"]), urlparse(app["DATABASE_REPLICA_URL"])
    # The same database and credentials, straight to the replica (its router is not pgbouncer-aware).
    assert replica.hostname == "postgres-replica" and replica.port == 5432
    assert (replica.username, replica.password, replica.path) == (primary.username, primary.password, primary.path)
    assert services["app"]["depends_on"]["postgres-replica"]["condition"] == "service_healthy"
    # A base backup of `postgres` started as a standby (-R), and a primary that accepts its replication connection.
    replica_service = services["postgres-replica"]
    script = " ".join(replica_service["command"])
    assert "pg_basebackup -h postgres " in script and " -R " in script
    assert replica_service["environment"]["PGUSER"] == primary.username
    assert "pg_is_in_recovery()" in " ".join(replica_service["healthcheck"]["test"])
    init = _host_path("postgres", "/docker-entrypoint-initdb.d/10-replication.sh").read_text()
    assert "host replication ${POSTGRES_USER} all scram-sha-256" in init
    # Both clusters are scraped (the postgres job's second target).
    exporter = services["postgres-replica-exporter"]["environment"]["DATA_SOURCE_NAME"]
    assert urlparse(exporter).hostname == "postgres-replica"


@needs_compose
def test_prometheus_scrapes_only_compose_services() -> None:
    config = yaml.safe_load(_host_path("prometheus", "/etc/prometheus/prometheus.yml").read_text())
    services = _services()
    for job in config["scrape_configs"]:
        hosts = [target.rsplit(":", 1)[0] for sc in job.get("static_configs", []) for target in sc["targets"]]
        hosts += [name for sd in job.get("dns_sd_configs", []) for name in sd["names"]]
        assert hosts, job["job_name"]
        assert all(host == "localhost" or host in services for host in hosts), f"{job['job_name']}: {hosts}"


@needs_compose
def test_mtail_counts_the_access_log_compose_nginx_writes(tmp_path: Path) -> None:
    """The edge job: nginx's `chowist` log lines, rendered from compose's nginx.conf, read by the mtail program
    compose mounts (one-shot mode), health probes left out; mtail tails the file nginx writes, on one volume."""
    mtail = shutil.which("mtail")
    if mtail is None:
        pytest.skip("mtail is not installed (apt-get install mtail)")
    services = _services()
    nginx_conf = _host_path("nginx", "/etc/nginx/nginx.conf").read_text()
    log_path = re.search(r"access_log (\S+) chowist\b", nginx_conf).group(1)
    logs_arg = services["mtail"]["command"][services["mtail"]["command"].index("--logs") + 1]
    assert logs_arg == log_path
    volume = {v.split(":")[1]: v.split(":")[0] for v in services["nginx"]["volumes"]}[str(Path(log_path).parent)]
    assert any(v.startswith(f"{volume}:{Path(log_path).parent}") for v in services["mtail"]["volumes"])

    log_format = "".join(re.findall(r"'([^']*)'", re.search(r"log_format chowist .*?;", nginx_conf, re.S).group(0)))
    sample = {
        "time_iso8601": "2026-12-04T10:00:00+00:00",
        "request_id": "0" * 32,
        "request_method": "GET",
        "body_bytes_sent": "512",
        "request_time": "0.012",
        "upstream_addr": "172.18.0.5:8000",
        "upstream_status": "200",
        "upstream_response_time": "0.011",
    }
    requests = [("/places/", 200), ('/places/?q=\\"pizza\\"', 200), ("/places/1/", 502), ("/nope/", 404)]
    requests += [("/healthz", 200), ("/readyz?full=1", 503)]
    lines = []
    for uri, status in requests:
        values = {**sample, "request_uri": uri, "status": str(status)}
        lines.append(re.sub(r"\$(\w+)", lambda m, values=values: values[m.group(1)], log_format))
    assert all(json.loads(line) for line in lines)
    access_log = tmp_path / "access.log"
    access_log.write_text("\n".join(lines) + "\n")
    command = services["mtail"]["command"]
    progs = _host_path("mtail", command[command.index("--progs") + 1])
    out = subprocess.run(
        [mtail, "--progs", str(progs), "--logs", str(access_log), "--one_shot", "--one_shot_format", "prometheus",
         "--emit_prog_label=false", "--logtostderr", "--port", str(free_port())],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    counts = dict(re.findall(r'^nginx_http_responses_total\{status="(\d{3})"\} (\d+)', out, re.MULTILINE))
    assert counts == {"200": "2", "502": "1", "404": "1"}, out


@needs_compose
@pytest.mark.slow
@pytest.mark.parametrize("service", ["app", "worker", "migrate"])
def test_app_image_services_get_valid_django_settings(service: str, tmp_path: Path) -> None:
    """The environment compose gives each app-image service passes `manage.py check` (errors, not warnings:
    the local stack is plain HTTP on purpose). Container paths are moved under tmp_path; nothing else changes."""
    import os
    import sys

    env = {**os.environ, **{k: str(v) for k, v in _services()[service]["environment"].items()}}
    env["VAR_DIR"] = str(tmp_path / "var")
    if "LOG_FILE" in env:
        env["LOG_FILE"] = str(tmp_path / Path(env["LOG_FILE"]).name)
    if "PROMETHEUS_MULTIPROC_DIR" in _services()[service]["environment"]:
        # gunicorn's on_starting creates it in the container; here the directory stands in for that.
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "multiproc")
        (tmp_path / "multiproc").mkdir()
    # No collector to export to outside Docker; the endpoint's value is not what this checks.
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = ""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stack_up_without_the_env_file_fails_clearly() -> None:
    if (COMPOSE_DIR / ".env").exists():
        pytest.skip("compose/.env exists here, so `up` would really start the stack")
    result = subprocess.run(
        [sys.executable, "-m", "compose.stack", "up"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "compose/.env is missing: cp compose/.env.example compose/.env" in result.stderr


def test_missing_podman_prerequisites_are_named_with_their_debian_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack.shutil, "which", lambda name: None)
    monkeypatch.setattr(stack, "CNI_DNSNAME", Path("/nonexistent/dnsname"))
    with pytest.raises(stack.StackError) as raised:
        stack.check_podman_prerequisites()
    message = str(raised.value)
    assert "missing podman, runc, docker-compose, mmdebstrap, the dnsname CNI plugin" in message
    assert "apt-get install --no-install-recommends " + " ".join(stack.PODMAN_PACKAGES) in message


# --- images: Debian packages by default, registries only in profile `ui` --------------------------------------
UI_PROFILE = {"grafana", "loki", "alloy", "tempo", "otel-collector"}


def _default_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services().items() if not s.get("profiles")}


@needs_compose
def test_only_the_ui_profile_needs_an_image_registry() -> None:
    services = _services()
    assert {name for name, s in services.items() if s.get("profiles")} == UI_PROFILE
    assert all(services[name]["profiles"] == ["ui"] for name in UI_PROFILE)
    built = {build.image for build in stack.image_builds(_resolved())}
    pulled = {name: s["image"] for name, s in _default_services().items() if s["image"] not in built}
    assert not pulled, f"services outside profile `ui` that need a registry: {pulled}"
    # Nothing outside the profile waits for, or talks to, a service in it (the collector only when it is set).
    for name, service in _default_services().items():
        assert not set(service.get("depends_on", {})) & UI_PROFILE, name


@needs_compose
def test_every_built_image_starts_from_debian_bookworm_and_installs_debian_packages() -> None:
    builds = stack.image_builds(_resolved())
    assert len(builds) == len({b.image for b in builds}) >= 8
    for build in builds:
        text = build.dockerfile.read_text()
        bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
        assert bases and set(bases) == {"debian:bookworm-slim"}, f"{build.dockerfile}: {bases}"
        assert "apt-get install -y --no-install-recommends" in text, build.dockerfile
        # pip only from hash-checked locks.
        for line in re.findall(r"pip install[^;\n]*", text):
            assert "--require-hashes" in line, line


@needs_compose
def test_healthcheck_arguments_survive_podmans_docker_api() -> None:
    """podman 4.3's Docker API splits a CMD healthcheck's arguments at spaces: those need CMD-SHELL."""
    for name, service in _default_services().items():
        test = service["healthcheck"]["test"]
        if test[0] == "CMD":
            assert not any(" " in argument for argument in test[1:]), f"{name}: {test}"


@needs_compose
def test_the_app_and_worker_metrics_ports_are_the_monitoring_configs() -> None:
    services = _services()
    for name in ("app", "worker"):
        env = services[name]["environment"]
        assert int(env["APP_METRICS_PORT"]) == CONFIG.ports.app_metrics
        assert int(env["CONSUMER_METRICS_PORT"]) == CONFIG.ports.consumer_metrics
    assert str(CONFIG.ports.app_metrics) in services["app"]["expose"]
    assert str(CONFIG.ports.consumer_metrics) in services["worker"]["expose"]


def test_the_wheelhouse_stays_out_of_git_and_out_of_the_app_image() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "compose/wheels/x-1.0-py3-none-any.whl"], cwd=ROOT)
    assert ignored.returncode == 0
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text()
    # The code is copied through a stage that drops the wheels; only the deps stage's venv is copied from it.
    assert "COPY . /src\nRUN rm -rf /src/compose/wheels" in dockerfile
    assert "COPY . ." not in dockerfile


def test_make_stack_deps_installs_what_compose_stack_checks_for() -> None:
    makefile = (ROOT / "Makefile").read_text()
    packages = re.search(r"^PODMAN_PACKAGES := (.+)$", makefile, re.MULTILINE).group(1).split()
    assert tuple(packages) == stack.PODMAN_PACKAGES
