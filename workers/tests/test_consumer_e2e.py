"""The real thing: the app and the consumer as child processes, on both queue backends.

Nothing lost: interactions sent through the HTTP API survive a SIGKILL of the consumer in the middle of a
drain and are counted exactly once after it restarts.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
import redis

from chowist.interactions.models import Interaction, PlaceDailyCounter
from chowist.places.models import Place
from conftest import PYTHON, ROOT, free_port
from experiments.lab.appserver import consumer_start, devserver_start

N_INTERACTIONS = 240
KINDS = ("view", "like", "bookmark")


@pytest.fixture(params=["sqlite", "redis"])
def worker_env(request, child_env, tmp_path):
    env = dict(child_env)
    env["CONSUMER_METRICS_PORT"] = str(free_port())
    # A queue of its own: other test runs may share this Redis database.
    env["HUEY_QUEUE_NAME"] = f"e2e_{uuid.uuid4().hex}"
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    else:
        env.pop("REDIS_URL", None)
    env["HUEY_SQLITE_PATH"] = str(tmp_path / "huey.sqlite3")
    yield env
    if request.param == "redis":
        client = redis.Redis.from_url(env["REDIS_URL"])
        keys = list(client.scan_iter(f"huey.*.{env['HUEY_QUEUE_NAME']}*"))
        if keys:
            client.delete(*keys)


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def http_post_json(url: str, body: dict, timeout: float = 5.0) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _queue_status(env) -> dict:
    out = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), "queue_status", "--json"], env=env, cwd=ROOT, capture_output=True, check=True
    )
    return json.loads(out.stdout)


def _metric(env, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    _, text = http_get(f"http://127.0.0.1:{env['CONSUMER_METRICS_PORT']}/metrics")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.mark.slow
def test_sigkill_mid_drain_loses_nothing_and_counts_once(worker_env, tmp_path):
    # One row per batch makes the drain slow enough to be caught in the middle.
    env = {**worker_env, "INTERACTIONS_DRAIN_BATCH": "1"}
    place = Place.objects.create(name="Kill test diner")
    port = free_port()
    app = devserver_start(env=env, port=port, log_path=tmp_path / "app.log")
    consumer = None
    try:
        url = f"http://127.0.0.1:{port}/api/places/{place.pk}/interactions/"
        sent = Counter()
        for i in range(N_INTERACTIONS):
            kind = KINDS[i % len(KINDS)]
            assert http_post_json(url, {"kind": kind}) == 202
            sent[kind] += 1
        assert Interaction.objects.filter(processed_at__isnull=True).count() == N_INTERACTIONS

        # Consumer stopped: the queued drain task and the inbox only get older.
        first = _queue_status(env)
        time.sleep(0.5)
        second = _queue_status(env)
        assert first["queue"]["depth"] >= 1
        assert second["queue"]["oldest_pending_age_s"] > first["queue"]["oldest_pending_age_s"] > 0
        assert second["inbox"]["oldest_pending_age_s"] > first["inbox"]["oldest_pending_age_s"] > 0

        consumer = consumer_start(env=env, log_path=tmp_path / "worker-1.log")
        done = Interaction.objects.filter(processed_at__isnull=False)
        wait_for(lambda: done.count() > 0, timeout=20, what="the drain to start", interval=0.002)
        consumer.stop(sig=signal.SIGKILL, timeout_s=10)
        counted_before_kill = done.count()
        assert 0 < counted_before_kill < N_INTERACTIONS, "the kill must land mid-drain"

        consumer = consumer_start(env=env, log_path=tmp_path / "worker-2.log")
        pending = Interaction.objects.filter(processed_at__isnull=True)
        wait_for(lambda: not pending.exists(), timeout=60, what="the inbox to drain after the restart", interval=0.1)
        totals = PlaceDailyCounter.objects.filter(place=place)
        counted = Counter(
            view=sum(c.views for c in totals),
            like=sum(c.likes for c in totals),
            bookmark=sum(c.bookmarks for c in totals),
        )
        assert counted == sent
        assert consumer.stop() == 0, "SIGTERM stops the consumer gracefully"

        # One more while the consumer is down: its drain task waits, and the lag recorded says so.
        assert http_post_json(url, {"kind": "like"}) == 202
        time.sleep(1.0)
        consumer = consumer_start(env=env, log_path=tmp_path / "worker-3.log")
        wait_for(lambda: not pending.exists(), timeout=20, what="the last interaction to be counted", interval=0.05)
        wait_for(
            lambda: _metric(env, "chowist_job_lag_seconds_count", task="drain_interactions") >= 2,
            timeout=10,
            what="both drain tasks (the waiting one and the startup one) to run",
        )
        lag_count = _metric(env, "chowist_job_lag_seconds_count", task="drain_interactions")
        assert _metric(env, "chowist_job_lag_seconds_sum", task="drain_interactions") >= 1.0
        assert _metric(env, "chowist_job_lag_seconds_bucket", task="drain_interactions", le="0.5") < lag_count
        assert consumer.stop() == 0
        consumer = None
    finally:
        if consumer is not None:
            consumer.stop(sig=signal.SIGKILL)
        app.stop()


@pytest.mark.slow
def test_consumer_runs_the_periodic_task_and_serves_valid_metrics(child_env, tmp_path):
    env = {**child_env, "CONSUMER_METRICS_PORT": str(free_port()), "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite3")}
    env.pop("REDIS_URL", None)
    consumer = consumer_start(env=env, log_path=tmp_path / "worker.log")
    try:
        wait_for(
            lambda: _metric(env, "chowist_jobs_total", task="refresh_popular", outcome="success") >= 1,
            timeout=20,
            what="the periodic task to run at startup",
            interval=0.1,
        )
        _, text = http_get(f"http://127.0.0.1:{env['CONSUMER_METRICS_PORT']}/metrics")
        for name in ("chowist_queue_depth", "chowist_inbox_backlog", "chowist_job_lag_seconds_bucket"):
            assert name in text
        promtool = shutil.which("promtool")
        if promtool is None:
            pytest.skip("promtool is not installed (make system-deps)")
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.strip() == "" and check.stderr.strip() == "", check.stdout + check.stderr
    finally:
        assert consumer.stop() == 0
