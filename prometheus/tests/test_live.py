"""The configs and rules in a real Prometheus and Alertmanager (slow: they start real processes).

A small HTTP server plays the app and the consumer (a 10% 5xx ratio, 5% slow requests, fresh tasks); another
records Alertmanager's webhook calls, like the lab's recorder on WEBHOOK_PORT.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.lab.procs import Probe, Process, free_port, http_probe, start

HERE = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
# Faster than the lab's 5 s so the test takes seconds; the rules' windows are unchanged.
TEST_INTERVAL = "1s"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

pytestmark = pytest.mark.slow


def _app_metrics(elapsed: float) -> str:
    view = 'view="places:detail",method="GET"'
    return "\n".join(
        [
            f'django_http_responses_total_by_status_view_method_total{{{view},status="200"}} {90 * elapsed}',
            f'django_http_responses_total_by_status_view_method_total{{{view},status="500"}} {10 * elapsed}',
            f'django_http_requests_latency_seconds_by_view_method_bucket{{{view},le="0.3"}} {95 * elapsed}',
            f'django_http_requests_latency_seconds_by_view_method_bucket{{{view},le="+Inf"}} {100 * elapsed}',
            f"django_http_requests_latency_seconds_by_view_method_count{{{view}}} {100 * elapsed}",
            "",
        ]
    )


def _worker_metrics(elapsed: float) -> str:
    task = 'task="drain_interactions"'
    return "\n".join(
        [
            f'chowist_job_lag_seconds_bucket{{{task},le="5.0"}} {10 * elapsed}',
            f'chowist_job_lag_seconds_bucket{{{task},le="+Inf"}} {10 * elapsed}',
            f"chowist_job_lag_seconds_count{{{task}}} {10 * elapsed}",
            f'chowist_jobs_total{{{task},outcome="success"}} {10 * elapsed}',
            "chowist_queue_oldest_pending_age_seconds 0",
            "chowist_inbox_oldest_pending_age_seconds 0",
            "",
        ]
    )


class _Server(ThreadingHTTPServer):
    def __init__(self, port: int, body: Callable[[float], str] | None) -> None:
        self.body = body
        self.started = time.monotonic()
        self.posts: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        body = (self.server.body or (lambda _: ""))(time.monotonic() - self.server.started).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.posts.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[float], str] | None], _Server]]:
    servers: list[_Server] = []

    def start(body: Callable[[float], str] | None) -> _Server:
        server = _Server(free_port(), body)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def launch(argv: list[str], *, ready: list[Probe] | None = None) -> Process:
        name = Path(argv[0]).name
        proc = start(argv, name=name, log_path=tmp_path / f"{name}.log", ready=ready or [])
        started.append(proc)
        return proc

    yield launch
    for proc in started:
        proc.stop(timeout_s=STOP_TIMEOUT_S)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read() or b"null")


def _post(url: str, payload: Any) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def _wait(what: str, check: Callable[[], Any], proc: Process, timeout: float = READY_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not proc.alive():
            pytest.fail(str(proc.failure(f"{what}: the process exited with {proc.returncode}")))
        try:
            result = check()
            if result:
                return result
        except OSError as exc:
            last_error = exc
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what} (last error: {last_error})")


def _alertmanager_config(tmp_path: Path, webhook_port: int) -> Path:
    config = yaml.safe_load((HERE / "alertmanager.yml").read_text())
    config["route"]["group_wait"] = "1s"
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = hook["url"].replace("127.0.0.1:9095", f"127.0.0.1:{webhook_port}")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start_alertmanager(run: Callable, tmp_path: Path, webhook_port: int) -> tuple[str, Process]:
    if ALERTMANAGER is None:
        pytest.skip("Alertmanager is not installed (apt-get install --no-install-recommends prometheus-alertmanager)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = run(
        [
            ALERTMANAGER,
            f"--config.file={_alertmanager_config(tmp_path, webhook_port)}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        ready=[http_probe(f"{url}/-/ready")],
    )
    return url, proc


def _notified(webhook: _Server) -> dict[str, set[tuple[str, str]]]:
    """receiver -> {(alertname, window_set)} of every firing alert the webhook was sent."""
    seen: dict[str, set[tuple[str, str]]] = {}
    for post in webhook.posts:
        for alert in post.get("alerts", []):
            if alert.get("status") == "firing":
                labels = alert["labels"]
                seen.setdefault(post["receiver"], set()).add((labels["alertname"], labels.get("window_set", "")))
    return seen


def test_prometheus_loads_every_rule_group_and_pages_through_alertmanager(
    tmp_path: Path, serve: Callable, run: Callable
) -> None:
    if PROMETHEUS is None:
        pytest.skip("Prometheus is not installed (apt-get install --no-install-recommends prometheus)")
    app, worker, webhook = serve(_app_metrics), serve(_worker_metrics), serve(None)
    am_url, _ = _start_alertmanager(run, tmp_path, webhook.server_address[1])
    port = free_port()

    config = yaml.safe_load((HERE / "prometheus.yml").read_text())
    config["global"].update(
        scrape_interval=TEST_INTERVAL, evaluation_interval=TEST_INTERVAL, scrape_timeout=TEST_INTERVAL
    )
    config["rule_files"] = [str(HERE / rule_file) for rule_file in config["rule_files"]]
    targets = {"chowist-app": app, "chowist-worker": worker}
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']].server_address[1]}"]}]
        elif job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [am_url.removeprefix("http://")]}]}]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{port}"
    proc = run(
        [
            PROMETHEUS,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
    )

    expected_groups = {
        f"{prefix}-chowist-{slo}" for prefix in ("slo", "slo-lab") for slo in ("availability", "latency", "freshness")
    } | {"chowist-health", "chowist-health-lab"}

    def groups_evaluated() -> list[dict] | None:
        groups = _get(f"{url}/api/v1/rules")["data"]["groups"]
        evaluated = all(rule.get("lastEvaluation", "").startswith("20") for g in groups for rule in g["rules"])
        return groups if evaluated and groups else None

    groups = _wait("every rule evaluated once", groups_evaluated, proc)
    assert {group["name"] for group in groups} == expected_groups
    broken = [(rule["name"], rule.get("lastError")) for g in groups for rule in g["rules"] if rule["health"] != "ok"]
    assert broken == []

    def lab_ratios() -> dict[str, float] | None:
        result = _get(f"{url}/api/v1/query?query=slo:sli_error:ratio_rate5m%7Bwindow_set%3D%22lab%22%7D")["data"][
            "result"
        ]
        ratios = {sample["metric"]["slo"]: float(sample["value"][1]) for sample in result}
        return ratios if len(ratios) == 3 else None

    ratios = _wait("the lab SLIs from scraped data", lab_ratios, proc)
    assert ratios == pytest.approx({"availability": 0.1, "latency": 0.05, "freshness": 0.0}, abs=1e-6)

    # A 10% 5xx ratio is a 100x burn of the 0.1% budget: both window sets page, through Alertmanager, to the
    # page receiver; latency (5x) and freshness (0x) do not page.
    def paged() -> set[tuple[str, str]] | None:
        pages = _notified(webhook).get("page", set())
        return pages if {("AvailabilitySLOPageBurn", "lab"), ("AvailabilitySLOPageBurn", "")} <= pages else None

    pages = _wait("the availability page at the webhook", paged, proc, timeout=45)
    assert {name for name, _ in pages} == {"AvailabilitySLOPageBurn"}


def test_alertmanager_inhibits_an_slos_ticket_while_it_pages(tmp_path: Path, serve: Callable, run: Callable) -> None:
    webhook = serve(None)
    am_url, proc = _start_alertmanager(run, tmp_path, webhook.server_address[1])

    def alert(name: str, severity: str, slo: str) -> dict[str, Any]:
        return {
            "labels": {"alertname": name, "severity": severity, "service": "chowist", "slo": slo, "window_set": "lab"}
        }

    _post(
        f"{am_url}/api/v2/alerts",
        [
            alert("AvailabilitySLOPageBurn", "page", "availability"),
            alert("AvailabilitySLOTicketBurn", "ticket", "availability"),
            alert("LatencySLOTicketBurn", "ticket", "latency"),
        ],
    )

    def delivered() -> dict[str, set[tuple[str, str]]] | None:
        seen = _notified(webhook)
        return seen if "page" in seen and "ticket" in seen else None

    seen = _wait("both receivers notified", delivered, proc)
    time.sleep(2)  # a late, wrongly uninhibited ticket would arrive within the 1 s group wait
    seen = _notified(webhook)
    assert seen == {"page": {("AvailabilitySLOPageBurn", "lab")}, "ticket": {("LatencySLOTicketBurn", "lab")}}
