"""The Locust `upload` task against a real gunicorn: the demo editor's photos are accepted (202) and stored, the bad
uploads mixed in are refused with a 4xx, never a 5xx; the logged-in editor's repeat likes of the day (202,
"duplicate") are counted apart, so Locust's interactions are exactly the ones the app accepted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port
from experiments.lab.appserver import gunicorn_argv
from experiments.lab.procs import http_probe, start

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "experiments" / "locust" / "locustfile.py"
RUN_S = 8
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def test_the_locustfile_logs_in_as_the_editor_seed_editor_creates() -> None:
    from chowist.demo import demo_data

    # Read, not imported: importing locust monkey-patches the test process with gevent.
    expected = f'EDITOR = ("{demo_data.DEMO_EDITOR}", "{demo_data.DEMO_PASSWORD}")'
    assert expected in LOCUSTFILE.read_text()


@pytest.mark.slow
def test_uploads_under_load_are_accepted_and_bad_ones_stay_4xx(tmp_path: Path) -> None:
    var = tmp_path / "var"
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "VAR_DIR": str(var),
        "APP_PORT": str(port),
        "APP_METRICS_PORT": str(metrics_port),
        "GUNICORN_WORKERS": "1",
        "PYTHONPATH": str(ROOT),
    }
    for name in ("DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL", "CACHE_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    seed = ["--places", "10", "--users", "3", "--reviews", "5", "--interactions", "0"]
    subprocess.run([*manage, "seed_demo", *seed], cwd=ROOT, env=env, check=True, timeout=300)
    subprocess.run([*manage, "seed_editor"], cwd=ROOT, env=env, check=True, timeout=120)
    ids = subprocess.run(
        [
            *manage,
            "shell",
            "--no-imports",
            "-c",
            "from chowist.places.models import Place; print(*Place.objects.values_list('pk', flat=True))",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split()
    (tmp_path / "ids.txt").write_text("\n".join(i for i in ids if i.isdigit()))
    log = tmp_path / "app.log"
    base = f"http://127.0.0.1:{port}"
    app = start(
        gunicorn_argv(),
        name="gunicorn",
        log_path=log,
        env={**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")},
        cwd=ROOT,
        ready=[http_probe(base + "/healthz")],
        ready_timeout_s=READY_TIMEOUT_S,
    )
    try:
        locust = subprocess.run(
            [
                *[sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "3", "-r", "3"],
                *[
                    "-t",
                    f"{RUN_S}s",
                    "--stop-timeout",
                    "20",
                    "-H",
                    base,
                    # Not --csv: its files are rewritten once a second and miss what ends after the last
                    # rewrite (measured 114 of 124 interactions); the JSON is written after every user stopped.
                    "--json-file",
                    str(tmp_path / "run"),
                    "--only-summary",
                ],
                *["--mix", "upload=1,interact=2", "--wait-ms", "50,100"],
                *["--place-ids-file", str(tmp_path / "ids.txt")],
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_S + 60,
        )
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    finally:
        app.stop(timeout_s=STOP_TIMEOUT_S)
    assert (tmp_path / "run.json").exists(), locust.stderr[-3000:]
    stats = {e["name"]: e for e in json.loads((tmp_path / "run.json").read_text())}
    good, bad = stats["POST /api/places/[id]/photo/"], stats.get("POST /api/places/[id]/photo/ (bad)")
    assert good["num_requests"] >= 5, locust.stderr[-2000:]
    assert good["num_failures"] == 0, locust.stderr[-2000:]
    assert bad is None or bad["num_failures"] == 0, locust.stderr[-2000:]
    assert stats["POST /accounts/login/"]["num_failures"] == 0
    accepted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("chowist_interactions_accepted_total{")
    )
    interactions = stats["POST /api/places/[id]/interactions/"]
    # Every user finishes its request before Locust stops (--stop-timeout), so each new interaction the app
    # accepted is one Locust saw answered 202 without "duplicate", and a repeat like is never counted twice.
    assert interactions["num_requests"] - interactions["num_failures"] == accepted
    duplicates = stats.get("POST /api/places/[id]/interactions/ (duplicate)")
    assert duplicates is None or duplicates["num_failures"] == 0
    photos = list((var / "media").rglob("*.png"))
    assert len(photos) >= good["num_requests"] // 2  # stored (thumbnails follow in the consumer)
