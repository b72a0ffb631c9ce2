"""The native lab for real: every component up and healthy, scraped by Prometheus, crash reported, nothing left.

Free ports and a temporary LAB_DIR/VAR_DIR, so these run beside a developer's lab.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from experiments.lab import Lab, LabConfig, LabError
from experiments.lab.config import ROOT
from experiments.lab.lab import APP, WORKER
from experiments.lab.procs import group_members, port_in_use
from experiments.lab.tests.isolated import isolated_config

pytestmark = pytest.mark.slow

BINARIES = ("prometheus", "prometheus-alertmanager")
# Prometheus scrapes every 5 s; a few intervals is plenty for `up` to read 1.
SCRAPE_WAIT_S = 30
# prometheus/alertmanager.yml waits group_wait (10 s) before the first notification.
NOTIFY_WAIT_S = 40


def _require_binaries() -> None:
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make system-deps installs the Debian packages)")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    _require_binaries()
    lab = Lab(isolated_config(tmp_path))
    try:
        yield lab
    finally:
        lab.down()


def _cli(lab: Lab, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAB_DIR": str(lab.lab_dir)}
    return subprocess.run(
        [sys.executable, "-m", "experiments.lab", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _post_json(url: str, payload: object) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def _up_by_job(prometheus_url: str) -> dict[str, str]:
    query = urllib.parse.urlencode({"query": "up"})
    result = _get_json(f"{prometheus_url}/api/v1/query?{query}")["data"]["result"]
    return {series["metric"]["job"]: series["value"][1] for series in result}


def _code(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _codes_settle(url: str, expected: int) -> bool:
    """True once 10 requests in a row (spread over the workers) answer `expected`; flags are re-read within 0.5 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(_code(url) == expected for _ in range(10)):
            return True
        time.sleep(0.2)
    return False


def _rule_groups(prometheus_url: str) -> list[str]:
    return [group["name"] for group in _get_json(f"{prometheus_url}/api/v1/rules")["data"]["groups"]]


def _is_lab_group(name: str) -> bool:
    return name.startswith("slo-lab-") or name.endswith("-lab")


def _all_pids(lab: Lab) -> set[int]:
    pids: set[int] = set()
    for name in lab.status():
        leader = lab.pid(name)
        if leader:
            pids.update(group_members(leader))
    return pids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def test_lab_up_scrape_crash_restart_down(lab: Lab) -> None:
    statuses = lab.up()
    assert {name: s.state for name, s in statuses.items()} == dict.fromkeys(
        ["webhook", "alertmanager", "prometheus", "worker", "app", "processes"], "running"
    )
    assert _get_json(f"{lab.app_url}/readyz")["failed"] == []
    pids = {name: lab.pid(name) for name in statuses}
    assert all(pids.values())

    # An alert sent to Alertmanager reaches the recorder through the rendered config (ports substituted).
    alert = {"labels": {"alertname": "LabSelfTest", "severity": "ticket"}, "annotations": {"summary": "lab test"}}
    assert _post_json(f"{lab.alertmanager_url}/api/v2/alerts", [alert]) == 200
    posted_at = time.monotonic()

    # Prometheus scrapes the app's and the consumer's metrics ports.
    deadline = time.monotonic() + SCRAPE_WAIT_S
    up = _up_by_job(lab.prometheus_url)
    while not (up.get("chowist-app") == "1" and up.get("chowist-worker") == "1") and time.monotonic() < deadline:
        time.sleep(1)
        up = _up_by_job(lab.prometheus_url)
    assert up.get("chowist-app") == "1" and up.get("chowist-worker") == "1", up

    # Faults reach every gunicorn worker through the file, without a restart, and show on the metrics port.
    set_fault = lab.manage("fault", "set", "http_5xx", "--views", "api:place-list", check=False)
    assert set_fault.returncode == 0, set_fault.stderr
    assert _codes_settle(f"{lab.app_url}/api/places/", 500) and _code(f"{lab.app_url}/places/") == 200
    metrics = urllib.request.urlopen(f"{lab.config.url(lab.config.app_metrics_port)}/metrics", timeout=5).read()
    assert b'chowist_fault_active{fault="http_5xx"} 1.0' in metrics
    lab.manage("fault", "clear-all")
    assert _codes_settle(f"{lab.app_url}/api/places/", 200)

    # Starting twice is harmless: nothing restarts; a changed rule window set is reloaded, not restarted.
    assert _rule_groups(lab.prometheus_url) and all(_is_lab_group(g) for g in _rule_groups(lab.prometheus_url))
    lab.config = replace(lab.config, window_set="production")
    lab.up()
    assert {name: lab.pid(name) for name in statuses} == pids
    groups = _rule_groups(lab.prometheus_url)
    assert groups and not any(_is_lab_group(g) for g in groups), groups
    cli = _cli(lab, "status")
    assert cli.returncode == 0, cli.stdout + cli.stderr

    # A crashed component is reported, with the tail of its log, by the API and the CLI.
    os.kill(pids[WORKER], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while lab.status()[WORKER].state != "crashed" and time.monotonic() < deadline:
        time.sleep(0.1)
    crashed = lab.status()[WORKER]
    assert crashed.state == "crashed" and not crashed.healthy
    assert "consumer" in crashed.log_tail.lower()
    cli = _cli(lab, "status")
    assert cli.returncode == 1
    assert "worker" in cli.stdout and "crashed" in cli.stdout
    assert "not running: worker" in cli.stderr

    # `up` again starts only what is missing.
    lab.up()
    assert lab.pid(WORKER) not in (None, pids[WORKER])
    assert lab.pid(APP) == pids[APP]

    # A/B variant: the app restarts with other settings, the consumer keeps its own.
    restarted = lab.restart(APP, app_env={"POPULAR_CACHE": "off"})
    assert restarted.healthy and restarted.pid != pids[APP]
    environ = Path(f"/proc/{restarted.pid}/environ").read_bytes().split(b"\0")
    assert b"POPULAR_CACHE=off" in environ
    assert lab.env(WORKER).get("POPULAR_CACHE") != "off"

    deadline = posted_at + NOTIFY_WAIT_S
    while not lab.alerts_file.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    notes = [json.loads(line) for line in lab.alerts_file.read_text().splitlines()]
    assert any(a["labels"]["alertname"] == "LabSelfTest" for n in notes for a in n["payload"]["alerts"])
    assert all("received_at" in n for n in notes)

    # Down leaves no process behind and frees every port; down again is harmless.
    everything = _all_pids(lab)
    assert len(everything) > len(statuses)  # gunicorn's workers count too
    stopped = lab.down()
    assert set(stopped) == set(statuses)
    assert [pid for pid in everything if _alive(pid)] == []
    config = lab.config
    assert not any(port_in_use(config.host, getattr(config, name)) for name in LabConfig.port_fields())
    assert lab.down() == []
    assert all(s.state == "stopped" for s in lab.status().values())
    cli = _cli(lab, "down")
    assert cli.returncode == 0 and "nothing was running" in cli.stdout


def test_busy_port_is_refused_before_anything_starts(lab: Lab) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind((lab.config.host, lab.config.prometheus_port))
        blocker.listen()
        with pytest.raises(LabError, match=r"PROMETHEUS_PORT"):
            lab.up()
    assert all(s.state == "stopped" for s in lab.status().values())


def test_cli_up_status_down(tmp_path: Path) -> None:
    _require_binaries()
    config = isolated_config(tmp_path)
    env = {
        **os.environ,
        "LAB_DIR": str(config.lab_dir),
        "VAR_DIR": str(config.var_dir),
        # The isolated config's layout (the direct path), as the CLI reads it from the environment.
        "LAB_PROXY": config.proxy,
        **{name.upper(): str(getattr(config, name)) for name in LabConfig.port_fields()},
    }
    env.pop("DATABASE_URL", None)
    run = [sys.executable, "-m", "experiments.lab"]
    try:
        up = subprocess.run(
            [*run, "up", "--set", "INTERACTIONS_MODE=sync"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert up.returncode == 0, up.stdout + up.stderr
        assert "app" in up.stdout and "running" in up.stdout
        # A later command finds the running lab by its LAB_DIR alone: the ports come from lab.json.
        only_dir = {**os.environ, "LAB_DIR": str(config.lab_dir)}
        status = subprocess.run([*run, "status"], env=only_dir, cwd=ROOT, capture_output=True, text=True)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"127.0.0.1:{config.app_port}" in status.stdout
        state = json.loads((config.lab_dir / "lab.json").read_text())
        assert state["app_env"]["app"] == {"INTERACTIONS_MODE": "sync"}
        assert (config.lab_dir / "app.log").stat().st_size > 0
    finally:
        down = subprocess.run([*run, "down"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    status = subprocess.run([*run, "status"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert status.returncode == 1 and "stopped" in status.stdout


def test_services_profile_through_pgbouncer(redis_url: str) -> None:
    """PostgreSQL (database created when missing) through pgbouncer running as a non-root user, and Redis."""
    _require_binaries()
    psycopg = pytest.importorskip("psycopg")
    if shutil.which("pgbouncer") is None and not Path("/usr/sbin/pgbouncer").exists():
        pytest.skip("pgbouncer not installed (make system-deps)")
    admin = "postgres://postgres@127.0.0.1:5432/postgres"
    try:
        psycopg.connect(admin, connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    name = f"chowist_lab_test_{os.getpid()}"
    # pgbouncer runs as another user, who must be able to reach its config: not under pytest's 0700 tmp.
    base = Path(tempfile.mkdtemp(prefix="chowist-lab-"))
    base.chmod(0o755)
    lab = Lab(isolated_config(base, database_url=f"postgres://postgres@127.0.0.1:5432/{name}", redis_url=redis_url))
    try:
        statuses = lab.up(profile="services", pgbouncer=True)
        assert all(s.healthy for s in statuses.values()), statuses
        # The services profile runs the PostgreSQL and Redis exporters, and Prometheus scrapes them.
        assert set(statuses) == {
            *("pgbouncer", "webhook", "alertmanager", "prometheus", "worker", "app", "processes"),
            *("postgres-exporter", "redis-exporter"),
        }
        deadline = time.monotonic() + SCRAPE_WAIT_S
        # Prometheus scrapes the two exporters independently: wait for both, not only the first.
        while time.monotonic() < deadline:
            seen = _up_by_job(lab.prometheus_url)
            if seen.get("postgres") == "1" and seen.get("redis") == "1":
                break
            time.sleep(1)
        up = _up_by_job(lab.prometheus_url)
        assert up.get("postgres") == "1" and up.get("redis") == "1", up
        assert _get_json(f"{lab.app_url}/readyz")["failed"] == []
        env = lab.env(APP)
        assert f":{lab.config.pgbouncer_port}/{name}" in env["DATABASE_URL"] and env["DB_PGBOUNCER"] == "on"
        assert env["REDIS_URL"] == redis_url
        owner = Path(f"/proc/{lab.pid('pgbouncer')}").stat().st_uid
        assert owner != 0 or os.geteuid() != 0
        # The profile cannot change under a running lab.
        with pytest.raises(LabError, match="run `down` first"):
            lab.up(profile="embedded")
    finally:
        lab.down()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(base, ignore_errors=True)
