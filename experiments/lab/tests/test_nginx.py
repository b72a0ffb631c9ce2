"""nginx as the lab renders it, in front of a real gunicorn: static and media from disk, request ids passed
through, and a dead instance skipped (proxy_next_upstream) without a single error."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port
from experiments.lab.appserver import gunicorn_argv
from experiments.lab.nginx import NginxSpec, nginx_argv, nginx_binary, nginx_config, nginx_write
from experiments.lab.procs import http_probe, start

ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
IDLE_CLIENTS = 50
# A probe that waited behind idle connections would take gunicorn's keep-alive timeout or more.
IDLE_PROBE_BUDGET_S = 2.0


def test_the_config_balances_every_instance_over_keepalive_and_retries_refused_connections(tmp_path) -> None:
    spec = NginxSpec(
        listen_port=8080, upstream_ports=(8000, 8001), static_root=tmp_path, media_root=tmp_path, run_dir=tmp_path
    )
    config = nginx_config(spec)
    assert "server 127.0.0.1:8000 " in config and "server 127.0.0.1:8001 " in config
    assert "keepalive 32;" in config and 'proxy_set_header Connection "";' in config
    assert "proxy_next_upstream error timeout;" in config
    # A rolling restart takes the instance it restarts out of the rotation first.
    draining = nginx_config(NginxSpec(8080, (8000, 8001), tmp_path, tmp_path, tmp_path, down_ports=(8001,)))
    assert "server 127.0.0.1:8001 max_fails=1 fail_timeout=2s down;" in draining
    assert "server 127.0.0.1:8000 max_fails=1 fail_timeout=2s;" in draining
    with pytest.raises(ValueError, match="upstream"):
        nginx_config(NginxSpec(8080, (), tmp_path, tmp_path, tmp_path))


def test_nginx_accepts_the_rendered_config(tmp_path) -> None:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    spec = NginxSpec(
        free_port(), (free_port(), free_port()), tmp_path, tmp_path, tmp_path / "nginx", status_port=free_port()
    )
    result = subprocess.run([*nginx_argv(nginx_write(spec)), "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


@pytest.mark.slow
def test_nginx_serves_files_passes_request_ids_and_skips_a_dead_instance(tmp_path) -> None:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    var = tmp_path / "var"
    env = {**os.environ, "DJANGO_ENV": "test", "VAR_DIR": str(var), "PYTHONPATH": str(ROOT), "BEHIND_PROXY": "on"}
    for name in ("DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL", "CACHE_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    (var / "media" / "photos").mkdir(parents=True, exist_ok=True)
    (var / "media" / "photos" / "hello.txt").write_text("uploaded")

    app_port, dead_port, proxy_port = free_port(), free_port(), free_port()
    app_log, nginx_log = tmp_path / "app.log", tmp_path / "nginx.out"
    metrics_port = free_port()
    app_env = {**env, "APP_PORT": str(app_port), "APP_METRICS_PORT": str(metrics_port), "GUNICORN_WORKERS": "1"}
    app_env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prom")
    spec = NginxSpec(
        listen_port=proxy_port,
        upstream_ports=(dead_port, app_port),  # the first instance is down
        static_root=var / "static",
        media_root=var / "media",
        run_dir=tmp_path / "nginx",
    )
    base = f"http://127.0.0.1:{proxy_port}"
    app = start(
        gunicorn_argv(),
        name="gunicorn",
        log_path=app_log,
        env=app_env,
        cwd=ROOT,
        ready=[http_probe(f"http://127.0.0.1:{app_port}/healthz")],
        ready_timeout_s=READY_TIMEOUT_S,
    )
    try:
        nginx = start(
            nginx_argv(nginx_write(spec)),
            name="nginx",
            log_path=nginx_log,
            ready=[http_probe(base + "/static/admin/css/base.css")],
            ready_timeout_s=READY_TIMEOUT_S,
        )
    except BaseException:
        app.stop(timeout_s=STOP_TIMEOUT_S)
        raise
    try:
        # A dead instance is skipped: every request answers, none fails.
        statuses = [_get(base + path)[0] for _ in range(10) for path in ("/healthz", "/places/", "/api/places/")]
        assert statuses == [200] * len(statuses)

        # Static and media come from disk, never from the app.
        code, body, headers = _get(base + "/static/admin/css/base.css", {"X-Request-ID": "static-1"})
        assert code == 200 and body == (var / "static" / "admin" / "css" / "base.css").read_bytes()
        assert headers["X-Request-ID"] == "static-1" and "Cache-Control" in headers
        assert _get(base + "/media/photos/hello.txt")[1] == b"uploaded"
        assert _get(base + "/static/missing.css")[0] == 404

        # The client's request id reaches the app (its log and its response); without one nginx makes one.
        code, _, headers = _get(base + "/api/places/", {"X-Request-ID": "trace-me-42"})
        assert code == 200 and headers["X-Request-ID"] == "trace-me-42"
        generated = _get(base + "/healthz")[2]["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        time.sleep(1.5)  # nginx flushes its access log buffer every second
        app_lines = app_log.read_text()
        assert '"request_id":"trace-me-42"' in app_lines and generated in app_lines
        assert "/static/" not in app_lines and "/media/" not in app_lines
        assert generated in (spec.run_dir / "access.log").read_text()

        # The front door holds idle client connections, not the app: with 50 sockets open and silent (which took
        # gunicorn alone off every probe for 30 s, issue 21), the probe through nginx still answers at once.
        idle = [socket.create_connection(("127.0.0.1", proxy_port), timeout=5) for _ in range(IDLE_CLIENTS)]
        try:
            started = time.monotonic()
            assert _get(base + "/healthz")[0] == 200
            assert time.monotonic() - started < IDLE_PROBE_BUDGET_S
        finally:
            for sock in idle:
                sock.close()

        # nginx stamps X-Request-Start over whatever the client sent; the app records the wait before Django ran
        # each proxied request, and never sees the client's forged stamp (no rejection counted).
        _get(base + "/api/places/", {"X-Request-Start": "t=1"})
        metrics = _get(f"http://127.0.0.1:{metrics_port}/metrics")[1].decode()
        waits = re.search(r"^chowist_request_queue_seconds_count (\S+)$", metrics, re.MULTILINE)
        assert waits and float(waits.group(1)) >= 20, "every proxied request's wait is recorded"
        assert "chowist_request_queue_rejected_total{" not in metrics

        # With no instance left nginx answers 502 itself; mtail reads it from the access log (the availability
        # SLI at the edge, prometheus/mtail/nginx.mtail), health probes left out.
        app.stop(timeout_s=STOP_TIMEOUT_S)
        assert _get(base + "/places/")[0] == 502
        time.sleep(1.5)
        counts = _mtail_counts(spec.run_dir / "access.log")
        assert counts.get("502") == 1 and counts.get("404") == 1, counts
        assert counts.get("200", 0) >= 23, counts  # 20 pages, 3 files and the readiness probe's; not the 11 /healthz
    finally:
        nginx.stop(timeout_s=STOP_TIMEOUT_S)
        app.stop(timeout_s=STOP_TIMEOUT_S)


def _mtail_counts(access_log: Path) -> dict[str, int]:
    """nginx_http_responses_total by status, as the lab's mtail program counts `access_log` (one-shot mode)."""
    if shutil.which("mtail") is None:
        pytest.skip("mtail is not installed (apt-get install mtail)")
    out = subprocess.run(
        [
            "mtail",
            "--progs",
            str(ROOT / "prometheus" / "mtail"),
            "--logs",
            str(access_log),
            "--one_shot",
            "--one_shot_format",
            "prometheus",
            "--emit_prog_label=false",
            "--logtostderr",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    found = re.findall(r'^nginx_http_responses_total\{status="(\d{3})"\} (\d+)', out, re.MULTILINE)
    return {status: int(n) for status, n in found}
