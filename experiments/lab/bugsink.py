"""Bugsink, a self-hosted Sentry-protocol error tracker, for the lab and for the error-reporting test.

`python -m experiments.lab.bugsink up` (what `make errors-up` runs) installs Bugsink into its own virtualenv,
configures an instance, starts it on 127.0.0.1:BUGSINK_PORT, creates the `chowist` project and prints the
SENTRY_DSN to give the app. `down` stops it. The test starts a throwaway instance the same way.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envconfig import env_int, env_path
from experiments.lab.procs import Process, ProcessError, http_probe, start

ROOT = Path(__file__).resolve().parents[2]
BUGSINK_PORT = env_int("BUGSINK_PORT", 8010)
# Bugsink pins its own Django and gunicorn, so it lives in a virtualenv of its own.
BUGSINK_DIR = env_path("BUGSINK_DIR", ROOT / "var" / "bugsink")
# Exactly what `make lock` resolved from requirements/bugsink.in, hash-checked.
BUGSINK_LOCK = ROOT / "requirements" / "bugsink.txt"
BUGSINK_START_TIMEOUT_S = 60.0
BUGSINK_STOP_TIMEOUT_S = 5.0

PROJECT_NAME = "chowist"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "chowist-lab"  # noqa: S105 - local-only lab instance; printed by `make errors-up`


class BugsinkUnavailable(RuntimeError):
    """Bugsink could not be installed or started (no package index, no Python venv support, …)."""


@dataclass(frozen=True)
class Bugsink:
    instance_dir: Path
    port: int
    token: str
    dsn: str
    project_id: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        return _api(self.base_url, self.token, path, payload)


def venv_bin(*, bugsink_dir: Path = BUGSINK_DIR) -> Path:
    return bugsink_dir / "venv" / "bin"


def bugsink_install(*, bugsink_dir: Path = BUGSINK_DIR) -> Path:
    """pip-install Bugsink's lock into bugsink_dir/venv (again when the lock changed); its bin directory."""
    bin_dir = venv_bin(bugsink_dir=bugsink_dir)
    stamp = bin_dir.parent / "installed-lock.sha256"
    wanted = hashlib.sha256(BUGSINK_LOCK.read_bytes()).hexdigest()
    if (bin_dir / "bugsink-manage").exists() and stamp.exists() and stamp.read_text() == wanted:
        return bin_dir
    bugsink_dir.mkdir(parents=True, exist_ok=True)
    python = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [python, "-m", "venv", str(bin_dir.parent)],
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(BUGSINK_LOCK)],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BugsinkUnavailable(f"{' '.join(step)} failed: {(result.stderr or result.stdout)[-800:]}")
    stamp.write_text(wanted)
    return bin_dir


def _instance_env(instance_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({"DJANGO_SETTINGS_MODULE": "bugsink_conf", "PYTHONPATH": str(instance_dir)})
    return env


def _manage(bin_dir: Path, instance_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [str(bin_dir / "bugsink-manage"), *args],
        cwd=instance_dir,
        env=_instance_env(instance_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BugsinkUnavailable(f"bugsink-manage {' '.join(args)} failed: {result.stderr[-800:]}")
    return result.stdout


def _admin_ensure(bin_dir: Path, instance_dir: Path) -> None:
    """A login for the web UI; the instance only listens on 127.0.0.1."""
    env = {**_instance_env(instance_dir), "DJANGO_SUPERUSER_USERNAME": ADMIN_USERNAME}
    env["DJANGO_SUPERUSER_PASSWORD"] = ADMIN_PASSWORD
    subprocess.run(
        [str(bin_dir / "bugsink-manage"), "createsuperuser", "--noinput", "--email=admin@chowist.local"],
        cwd=instance_dir,
        env=env,
        capture_output=True,
        check=False,
    )


def _api(base_url: str, token: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - a local http URL we built
        f"{base_url}/api/canonical/0/{path}",
        data=json.dumps(payload).encode() if payload is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST" if payload is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


def bugsink_up(*, instance_dir: Path, port: int, bugsink_dir: Path = BUGSINK_DIR) -> Bugsink:
    """Install if needed, configure instance_dir (once), start Bugsink on 127.0.0.1:port, ensure the project."""
    bin_dir = bugsink_install(bugsink_dir=bugsink_dir)
    instance_dir.mkdir(parents=True, exist_ok=True)
    state_path = instance_dir / "state.json"
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state.get("port") != port:
        # BASE_URL (which the DSN is built from) is written into the config file.
        subprocess.run(
            [str(bin_dir / "bugsink-create-conf"), "--template=local", "--host=127.0.0.1", f"--port={port}"],
            cwd=instance_dir,
            env=_instance_env(instance_dir),
            capture_output=True,
            check=True,
        )
        _manage(bin_dir, instance_dir, "migrate", "--noinput", "-v0")
        _manage(bin_dir, instance_dir, "migrate", "snappea", "--database=snappea", "--noinput", "-v0")
        state = {"port": port, "token": _manage(bin_dir, instance_dir, "create_auth_token").strip()}
        _admin_ensure(bin_dir, instance_dir)
        state_path.write_text(json.dumps(state))

    base_url = f"http://127.0.0.1:{port}"
    try:
        start(
            [str(bin_dir / "gunicorn"), "bugsink.wsgi", f"--bind=127.0.0.1:{port}", "--workers=1", "--threads=4"],
            name="bugsink",
            log_path=instance_dir / "bugsink.log",
            env=_instance_env(instance_dir),
            cwd=instance_dir,
            pid_file=_pid_file(instance_dir),
            ready=[http_probe(f"{base_url}/health/ready")],
            ready_timeout_s=BUGSINK_START_TIMEOUT_S,
        )
    except ProcessError as exc:
        _pid_file(instance_dir).unlink(missing_ok=True)
        raise BugsinkUnavailable(str(exc)) from exc
    try:
        project = _project_ensure(base_url, state["token"])
    except BaseException:
        bugsink_down(instance_dir=instance_dir)
        raise
    return Bugsink(instance_dir, port, state["token"], project["dsn"], int(project["id"]))


def _project_ensure(base_url: str, token: str) -> dict[str, Any]:
    def existing() -> dict[str, Any] | None:
        projects = _api(base_url, token, "projects/")["results"]
        return next((p for p in projects if p["name"] == PROJECT_NAME), None)

    project = existing()
    if project is None:
        team = _api(base_url, token, "teams/", {"name": PROJECT_NAME})
        _api(base_url, token, "projects/", {"name": PROJECT_NAME, "team": team["id"]})
        project = existing()
    assert project is not None
    return project


def _pid_file(instance_dir: Path) -> Path:
    return instance_dir / "bugsink.pid"


def bugsink_down(*, instance_dir: Path) -> bool:
    """Stop the instance started from instance_dir; False when it was not running."""
    pid_path = _pid_file(instance_dir)
    process = Process.from_pid_file(pid_path, name="bugsink", log_path=instance_dir / "bugsink.log")
    pid_path.unlink(missing_ok=True)
    if process is None or not process.alive():
        return False
    process.stop(timeout_s=BUGSINK_STOP_TIMEOUT_S)
    return True


def bugsink_events(bugsink: Bugsink) -> list[dict[str, Any]]:
    """Every stored event of the project, with its full payload (`data`)."""
    events = []
    for issue in bugsink.api(f"issues/?project={bugsink.project_id}")["results"]:
        for event in bugsink.api(f"events/?issue={issue['id']}")["results"]:
            events.append(bugsink.api(f"events/{event['id']}/"))
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    args = parser.parse_args(argv)
    instance_dir = BUGSINK_DIR / "lab"
    if args.action == "down":
        print("Bugsink stopped" if bugsink_down(instance_dir=instance_dir) else "Bugsink was not running")
        return 0
    if _pid_file(instance_dir).exists():
        bugsink_down(instance_dir=instance_dir)
    bugsink = bugsink_up(instance_dir=instance_dir, port=BUGSINK_PORT)
    print(f"Bugsink on {bugsink.base_url} (pid file {_pid_file(instance_dir)}); give the app:")
    print(f"SENTRY_DSN={bugsink.dsn}")
    print(f"web UI login: {ADMIN_USERNAME} / {ADMIN_PASSWORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
