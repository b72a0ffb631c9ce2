"""The test a user would be: the README's recipe on a Django project that is not Chowist, end to end.

pack/tests/userapp/ is a stock Django project (django-prometheus wired the standard way, its metrics view on the
app's own port, default buckets plus the 0.3 s threshold) served by gunicorn under its own job name, `shop-web`.
`python -m pack` generates its pack from a config file, as a user would, and a real Prometheus (Debian's) scrapes
it every second with the pack's rules (lab windows, compressed 60x so that pages fire and resolve within a
minute). The client sends a known mix (errors, slow requests, fast ones, failing probes) and keeps its own count:

- the availability and latency SLIs match the shares sent within 1 point;
- the page and ticket alerts fire, and the pages resolve once the traffic is clean again;
- every query of the generic dashboards returns data;
- a second copy of the app without the threshold bucket (`shop-nobucket`) gets no latency SLI and fires
  SLOConfigLatencyBucketMissing, and a pack for a job no target has (`shop-ghost`) fires SLOConfigJobMissing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from experiments.lab.procs import Process, free_port, http_probe, start
from grafana.panels import dashboards, render_promql, variable_defaults
from monitoring.config import DJANGO_PROMETHEUS_DEFAULT_BUCKETS
from monitoring.pack_config import config_from_overrides

pytestmark = pytest.mark.slow

PROMETHEUS = shutil.which("prometheus")
USERAPP = Path(__file__).resolve().parent / "userapp"
THRESHOLD_S = 0.3
# The pack config a user writes (README); the lab windows are production's / 60: 5m -> 5 s, 1h -> 1 min,
# 30m -> 30 s, so a page clears within half a minute of clean traffic. One-second scrapes keep 4 per window.
PACK = {
    "service": "shop",
    "job": "shop-web",
    "excluded_views": ["healthz"],
    "latency_threshold_s": THRESHOLD_S,
    "latency_buckets": sorted({*DJANGO_PROMETHEUS_DEFAULT_BUCKETS[:-1], THRESHOLD_S}),
    "window_sets": ["lab"],
    "scrape_interval_s": 1,
    "lab_scale": 60,
}
# The second copy forgets the bucket (no latency_buckets: the generator can only warn from the defaults).
NOBUCKET = {"service": "shop-nobucket", "job": "shop-nobucket", "excluded_views": ["healthz"], "window_sets": ["lab"]}
NOBUCKET |= {"scrape_interval_s": 1, "lab_scale": 60}
GHOST = NOBUCKET | {"service": "shop-ghost", "job": "shop-ghost"}

# Phase 1: the mix below for BURN_S; phase 2: only fast successes for CLEAN_S (pages resolve).
BURN_S = 25.0
CLEAN_S = 40.0
RATE_PER_S = 24
CLIENTS = 8
MIX = {"error": 0.10, "slow": 0.20, "fast": 0.70}
PROBE_FAIL_EVERY = 3
TOLERANCE = 0.01
DEADLINE_S = 30.0
RATE_INTERVAL = "10s"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _query(prometheus: str, expr: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    return payload["data"]["result"]


def _value(prometheus: str, expr: str) -> float | None:
    result = _query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


def _firing(prometheus: str, service: str) -> set[str]:
    return {s["metric"]["alertname"] for s in _query(prometheus, f'ALERTS{{alertstate="firing",service="{service}"}}')}


def _wait(predicate, timeout_s: float = DEADLINE_S):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    result = predicate()
    while not result and time.monotonic() < deadline:
        time.sleep(1)
        result = predicate()
    return result


def _generate(tmp_path: Path, name: str, overrides: dict) -> tuple[Path, str]:
    """Run the pack command as a user does: a config file, an output folder. Returns (folder, stderr)."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(overrides))
    out = tmp_path / name
    result = subprocess.run(
        [sys.executable, "-m", "pack", "--config", str(config), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result.stderr


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for proc in reversed(started):
        proc.stop()


def _serve(tmp_path: Path, name: str, port: int, *, without_bucket: bool) -> Process:
    data = tmp_path / f"{name}-data"
    data.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(USERAPP),
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "SHOP_DATA_DIR": str(data),
    }
    if without_bucket:
        env["SHOP_WITHOUT_THRESHOLD_BUCKET"] = "1"
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "gunicorn", "shop.wsgi", "-w", "1", "--threads", "12", "-b", f"127.0.0.1:{port}"]
    return start(
        argv, name=name, log_path=tmp_path / f"{name}.log", cwd=USERAPP, env=env, ready=[http_probe(f"{url}/metrics")]
    )


class Client:
    """Sends the mix and keeps the log a user would compare the SLIs with."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.sent: Counter[str] = Counter()
        self.lock = threading.Lock()

    def _one(self, kind: str) -> None:
        path = {"error": "/order/?fail=1", "slow": "/report/", "fast": "/menu/", "probe": "/healthz/"}[kind]
        if kind == "probe" and self.sent["probe"] % PROBE_FAIL_EVERY == 0:
            path += "?fail=1"
        status = _get(self.app + path)
        with self.lock:
            self.sent[kind] += 1
            self.sent[f"status {status}"] += 1

    def run(self, mix: dict[str, float], seconds: float, seed: int) -> None:
        rng = random.Random(seed)
        kinds = list(mix)
        weights = list(mix.values())
        tick = time.monotonic()
        deadline = tick + seconds
        with ThreadPoolExecutor(CLIENTS) as pool:
            # One second's requests at a time, at a steady pace whatever the slow ones take.
            while tick < deadline:
                for kind in rng.choices(kinds, weights, k=RATE_PER_S):
                    pool.submit(self._one, kind)
                pool.submit(self._one, "probe")
                tick += 1.0
                time.sleep(max(0.0, tick - time.monotonic()))

    @property
    def user_facing(self) -> int:
        return self.sent["error"] + self.sent["slow"] + self.sent["fast"]


def test_a_plain_django_app_gets_slis_alerts_and_dashboards_from_the_pack(
    tmp_path: Path, processes: list[Process]
) -> None:
    if PROMETHEUS is None:
        pytest.skip("Prometheus is not installed (apt-get install --no-install-recommends prometheus)")
    pack, warnings = _generate(tmp_path, "pack", PACK)
    assert "warning" not in warnings, warnings
    nobucket_pack, nobucket_warnings = _generate(tmp_path, "nobucket-pack", NOBUCKET)
    assert "PROMETHEUS_LATENCY_BUCKETS" in nobucket_warnings, "the generator warns about the missing bucket"
    ghost_pack, _ = _generate(tmp_path, "ghost-pack", GHOST)

    app_port, nobucket_port, prometheus_port = free_port(), free_port(), free_port()
    processes.append(_serve(tmp_path, "shop-web", app_port, without_bucket=False))
    processes.append(_serve(tmp_path, "shop-nobucket", nobucket_port, without_bucket=True))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [
            str(p) for folder in (pack, nobucket_pack, ghost_pack) for p in (folder / "rules").glob("*.yml")
        ],
        "scrape_configs": [
            {"job_name": "shop-web", "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}]},
            {"job_name": "shop-nobucket", "static_configs": [{"targets": [f"127.0.0.1:{nobucket_port}"]}]},
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    processes.append(
        start(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            name="prometheus",
            log_path=tmp_path / "prometheus.log",
            ready=[http_probe(f"{prometheus}/-/ready")],
        )
    )

    # Traffic starts once every series the run writes has been scraped (one request of each kind, counted like
    # the rest): rate() loses a series' counts before its first scrape, which in a 25-second run is a
    # burst of the first second, not the run's mix.
    client = Client(f"http://127.0.0.1:{app_port}")
    nobucket = Client(f"http://127.0.0.1:{nobucket_port}")
    for kind in ("error", "slow", "fast", "probe", "probe"):
        client._one(kind)
    nobucket._one("fast")
    responses = 'django_http_responses_total_by_status_view_method_total{job=~"shop-web|shop-nobucket"}'
    assert _wait(lambda: len(_query(prometheus, responses)) >= 6)
    side = threading.Thread(target=nobucket.run, args=({"fast": 1.0, "slow": 0.0}, BURN_S, 2), daemon=True)
    side.start()
    client.run(MIX, BURN_S, seed=1)
    side.join(timeout=BURN_S + 30)
    # The last requests reach a scrape and an evaluation.
    time.sleep(3)

    sent_errors = client.sent["error"] / client.user_facing
    sent_slow = client.sent["slow"] / client.user_facing
    assert client.sent["status 500"] == client.sent["error"] and client.sent["status 503"] > 0, client.sent
    # The 3d window (72 min in these lab windows) spans the whole run: the SLI over everything sent.
    sli = {
        slo: _value(prometheus, f'slo:sli_error:ratio_rate3d{{service="shop",slo="{slo}",window_set="lab"}}')
        for slo in ("availability", "latency")
    }
    table = (
        f"\nSLI vs sent ({client.user_facing} user-facing requests, {client.sent['probe']} probes, scrapes excluded):\n"
        f"  availability: SLI {sli['availability']!r} errors, sent {sent_errors:.4f}\n"
        f"  latency:      SLI {sli['latency']!r} slow,   sent {sent_slow:.4f}"
    )
    counted = {
        f"{s['metric'].get('view')} {s['metric'].get('status')}": round(float(s["value"][1]))
        for s in _query(
            prometheus,
            'sum by (view, status) (django_http_responses_total_by_status_view_method_total{job="shop-web"})',
        )
    }
    table += f"\n  counters: {counted}\n  client: {dict(client.sent)}"
    print(table)
    # Prometheus's own scrapes went through the app's URLs (django-prometheus's metrics view) and are not in the SLIs.
    assert counted.get("prometheus-django-metrics 200", 0) > 0, counted
    assert sli["availability"] is not None and abs(sli["availability"] - sent_errors) <= TOLERANCE, table
    assert sli["latency"] is not None and abs(sli["latency"] - sent_slow) <= TOLERANCE, table

    burns = {"AvailabilitySLOPageBurn", "AvailabilitySLOTicketBurn", "LatencySLOPageBurn", "LatencySLOTicketBurn"}
    firing = _wait(lambda: burns <= _firing(prometheus, "shop") and _firing(prometheus, "shop"))
    assert burns <= (firing or set()), firing
    assert not {"SLOConfigJobMissing", "SLOConfigLatencyBucketMissing"} & _firing(prometheus, "shop")

    # Every query of the generic dashboards returns data, with the variables as they open on import.
    boards = dashboards(config_from_overrides(PACK), default_window_set="lab")
    values = variable_defaults(boards)
    queries = {
        f"{b.title} / {p.title}: {q.expr}": render_promql(q.expr, rate_interval=RATE_INTERVAL, variables=values)
        for b in boards
        for p in b.panels
        for q in p.queries
    }
    empty = [name for name, expr in queries.items() if not _query(prometheus, expr)]
    print(f"generic dashboard queries returning data: {len(queries) - len(empty)} / {len(queries)}")
    assert not empty, "no data for:\n  " + "\n  ".join(empty)
    # With the recipe's buckets (0.5, 0.75, ...) the 0.5 s view's p95 reads inside its bucket, not near 1 s.
    p95 = next(
        render_promql(q.expr, rate_interval="1m", variables=values)
        for b in boards
        for p in b.panels
        if p.title == "Latency p95 by view"
        for q in p.queries
    )
    report_p95 = next(float(s["value"][1]) for s in _query(prometheus, p95) if s["metric"].get("view") == "report")
    assert 0.5 <= report_p95 <= 0.75, report_p95

    # The copy without the threshold bucket: availability measured, latency absent, and a configuration alert.
    nobucket_slo = 'slo:sli_error:ratio_rate5m{{service="shop-nobucket",slo="{}",window_set="lab"}}'
    assert _value(prometheus, nobucket_slo.format("availability")) is not None
    assert _value(prometheus, nobucket_slo.format("latency")) is None
    assert _wait(lambda: "SLOConfigLatencyBucketMissing" in _firing(prometheus, "shop-nobucket"))
    # The pack for a job no target has: every SLI absent, and the job alert.
    assert _wait(lambda: "SLOConfigJobMissing" in _firing(prometheus, "shop-ghost"))
    assert not _query(prometheus, 'slo:sli_error:ratio_rate5m{service="shop-ghost"}')

    # Clean traffic: the pages resolve once the short windows hold no errors (30 s here).
    client.run({"fast": 1.0}, CLEAN_S, seed=3)
    pages = {"AvailabilitySLOPageBurn", "LatencySLOPageBurn"}
    still = _firing(prometheus, "shop") & pages
    assert not still, f"pages still firing after {CLEAN_S:g} s of clean traffic: {still}"
