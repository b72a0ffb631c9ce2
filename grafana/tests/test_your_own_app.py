"""Bring your own app: the lab's rules and dashboards on a Django project that only uses django-prometheus.

A tiny project, generated here, with no Chowist code at all (django-prometheus's middleware pair, its SQLite
and cache backends, its own metrics exporter), runs under gunicorn; a real Prometheus scrapes it as job
`chowist-app` with the generated rule files loaded. The availability and latency SLIs, their burn rates and
the Service overview's RED panels must return data, and the SLI must see the errors the traffic contained.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from experiments.lab.procs import Process, free_port, http_probe, start
from grafana.panels import SERVICE_OVERVIEW, render_promql
from monitoring.config import CONFIG, LAB, rule_file_path

PROMETHEUS = shutil.which("prometheus")
# Traffic: one request in ERROR_EVERY is a 500; bounded in count and time.
REQUESTS = 600
ERROR_EVERY = 20
TRAFFIC_S = 20.0
DATA_DEADLINE_S = 60.0
# Panels that read what only the Chowist lab exports: no data is the right answer. Its build and fault flags, and
# its front door's series (nginx's times through mtail, the queueing the app records behind it, the process
# exporter's groups), which the lab's Service overview shows beside the generic panels (pack/ tests the generic
# pack's dashboards on such an app, every query).
CHOWIST_ONLY = (
    CONFIG.metrics.build_info,
    CONFIG.metrics.fault_active,
    CONFIG.metrics.edge_request_duration,
    CONFIG.metrics.request_queue_duration,
    CONFIG.metrics.process_group_cpu,
)

pytestmark = pytest.mark.slow

SETTINGS = """
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "byoa-test-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["django_prometheus"]
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
ROOT_URLCONF = "byoa.urls"
DATABASES = {{"default": {{"ENGINE": "django_prometheus.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}}}
CACHES = {{"default": {{"BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache"}}}}
# The latency SLO's threshold must be a bucket edge.
PROMETHEUS_LATENCY_BUCKETS = {buckets!r}
PROMETHEUS_METRICS_EXPORT_PORT = {metrics_port}
PROMETHEUS_METRICS_EXPORT_ADDRESS = "127.0.0.1"
"""

URLS = """
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.urls import path


def hello(request):
    cache.get_or_set("greeting", "hello")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"hello": "world"})


def boom(request):
    return HttpResponseServerError("boom")


urlpatterns = [path("hello/", hello, name="hello"), path("boom/", boom, name="boom")]
"""

WSGI = """
import os
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "byoa.settings")
application = get_wsgi_application()
"""


def _project(root: Path, *, metrics_port: int) -> Path:
    package = root / "byoa"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    buckets = tuple(sorted({0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, CONFIG.slos.latency.threshold_s}))
    (package / "settings.py").write_text(textwrap.dedent(SETTINGS.format(buckets=buckets, metrics_port=metrics_port)))
    (package / "urls.py").write_text(URLS)
    (package / "wsgi.py").write_text(WSGI)
    return root


def _get(url: str, timeout: float = 10) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for proc in started:
        proc.stop()


def _query(prometheus_url: str, expr: str) -> list[dict]:
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    return payload["data"]["result"]


def test_the_lab_rules_and_service_overview_work_on_a_plain_django_prometheus_app(
    tmp_path: Path, processes: list[Process]
) -> None:
    if PROMETHEUS is None:
        pytest.skip("Prometheus is not installed (apt-get install --no-install-recommends prometheus)")
    app_port, metrics_port, prometheus_port = free_port(), free_port(), free_port()
    project = _project(tmp_path / "project", metrics_port=metrics_port)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(project),
        "DJANGO_SETTINGS_MODULE": "byoa.settings",
    }
    app = f"http://127.0.0.1:{app_port}"
    processes.append(
        start(
            [sys.executable, "-m", "gunicorn", "byoa.wsgi", "-w", "1", "--threads", "4", "-b", f"127.0.0.1:{app_port}"],
            name="byoa-gunicorn",
            log_path=tmp_path / "gunicorn.log",
            cwd=project,
            env=env,
            ready=[http_probe(f"{app}/hello/"), http_probe(f"http://127.0.0.1:{metrics_port}/metrics")],
        )
    )

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rule_file_path(LAB))],
        "scrape_configs": [
            {"job_name": CONFIG.jobs.app, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
    processes.append(
        start(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            name="byoa-prometheus",
            log_path=tmp_path / "prometheus.log",
            ready=[http_probe(f"{prometheus_url}/-/ready")],
        )
    )

    statuses: list[int] = []

    def traffic() -> None:
        deadline = time.monotonic() + TRAFFIC_S
        for n in range(REQUESTS):
            if time.monotonic() > deadline:
                break
            statuses.append(_get(f"{app}/boom/" if n % ERROR_EVERY == 0 else f"{app}/hello/"))
            time.sleep(TRAFFIC_S / REQUESTS)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()

    slo_exprs = {
        f"{slo} SLI": f'slo:sli_error:ratio_rate5m{{slo="{slo}",window_set="lab"}}'
        for slo in ("availability", "latency")
    } | {
        f"{slo} burn rate": f'slo:current_burn_rate:ratio{{slo="{slo}",window_set="lab"}}'
        for slo in ("availability", "latency")
    }
    panels = {
        f"{panel.title}: {query.expr}": render_promql(query.expr, rate_interval="10s")
        for panel in SERVICE_OVERVIEW.panels
        for query in panel.queries
        if not any(name in query.expr for name in CHOWIST_ONLY)
    }
    pending = {**slo_exprs, **panels}
    results: dict[str, list[dict]] = {}
    deadline = time.monotonic() + DATA_DEADLINE_S + TRAFFIC_S
    while pending and time.monotonic() < deadline:
        for name, expr in list(pending.items()):
            result = _query(prometheus_url, expr)
            if result:
                results[name] = result
                del pending[name]
        time.sleep(1)
    sender.join(timeout=TRAFFIC_S + 30)
    assert not pending, "no data for:\n  " + "\n  ".join(f"{name}: {expr}" for name, expr in pending.items())

    assert statuses.count(500) >= 5 and statuses.count(200) >= 50, statuses

    # The SLIs answer 0 as soon as there is traffic ("or vector(0)"): wait until the errors have been scraped.
    def first_positive(expr: str) -> float:
        value = 0.0
        while time.monotonic() < deadline:
            value = max((float(series["value"][1]) for series in _query(prometheus_url, expr)), default=0.0)
            if value > 0:
                break
            time.sleep(1)
        return value

    # The availability SLI sees the errors (the lab's 25 s window of a 1-in-20 error rate) and burns budget.
    availability = first_positive(slo_exprs["availability SLI"])
    assert 0 < availability < 0.5, availability
    assert first_positive(slo_exprs["availability burn rate"]) > 1
    # Every request here is fast: the latency SLI is there and says so.
    assert float(results["latency SLI"][0]["value"][1]) < 0.05
    # The panels' per-view series name the project's own URL names.
    views = {series["metric"].get("view") for name, series_list in results.items() for series in series_list}
    assert {"hello", "boom"} <= views, views
