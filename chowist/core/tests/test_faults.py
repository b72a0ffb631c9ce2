"""Fault flags change the app's behaviour as specified, only while on, never in production, always logged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from chowist.core import faults
from chowist.core.fault_injection import db_latency_install


@pytest.fixture
def faults_file(settings, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "faults.json"
    settings.FAULTS_FILE = path
    faults.faults_reload()
    yield path
    faults.faults_clear_all()
    faults.faults_reload()


def _status(client, name: str, **kwargs) -> int:
    return client.get(reverse(name, kwargs=kwargs or None)).status_code


@pytest.mark.django_db
def test_http_5xx_on_one_view_fails_that_view_only(client, faults_file: Path) -> None:
    assert _status(client, "api:place-list") == 200
    faults.fault_set(name=faults.HTTP_5XX, value=1.0, views=["api:place-list"])

    responses = [client.get(reverse("api:place-list")) for _ in range(5)]
    assert {r.status_code for r in responses} == {500}
    assert "http_5xx" in responses[0].json()["error"]
    assert _status(client, "places:list") == 200
    assert _status(client, "marketing:home") == 200

    faults.fault_clear(name=faults.HTTP_5XX)
    assert _status(client, "api:place-list") == 200


@pytest.mark.django_db
def test_http_5xx_fraction_and_status(client, faults_file: Path) -> None:
    faults.fault_set(name=faults.HTTP_5XX, value=0.5, status=503)
    codes = [_status(client, "api:place-list") for _ in range(200)]
    failed = codes.count(503)
    # Binomial(200, 0.5): outside 60..140 has a probability below 1e-8.
    assert 60 <= failed <= 140
    assert set(codes) == {200, 503}


@pytest.mark.django_db
def test_http_5xx_without_views_spares_the_health_probes(client, faults_file: Path) -> None:
    faults.fault_set(name=faults.HTTP_5XX, value=1.0)
    assert _status(client, "places:list") == 500
    assert _status(client, "core:healthz") == 200


@pytest.mark.django_db
def test_http_latency_delays_the_chosen_view(client, faults_file: Path) -> None:
    added_ms = 300
    faults.fault_set(name=faults.HTTP_LATENCY, value=added_ms, views=["api:place-list"])

    start = time.perf_counter()
    assert _status(client, "api:place-list") == 200
    delayed = time.perf_counter() - start
    start = time.perf_counter()
    assert _status(client, "core:healthz") == 200
    undelayed = time.perf_counter() - start

    assert delayed >= added_ms / 1000
    assert undelayed < added_ms / 1000


@pytest.mark.django_db
def test_db_latency_adds_time_to_every_query_of_a_request(client, faults_file: Path) -> None:
    added_ms = 40
    faults.fault_set(name=faults.DB_LATENCY, value=added_ms)
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        assert _status(client, "api:place-list") == 200
        elapsed = time.perf_counter() - start
    assert len(queries) >= 1
    assert elapsed >= len(queries) * added_ms / 1000

    faults.fault_clear(name=faults.DB_LATENCY)
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert time.perf_counter() - start < added_ms / 1000


@pytest.mark.django_db
def test_db_latency_outside_requests_once_installed(faults_file: Path) -> None:
    """The consumer has no middleware: db_latency_install puts the wrapper on its connections."""
    added_ms = 40
    db_latency_install()
    faults.fault_set(name=faults.DB_LATENCY, value=added_ms)
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert time.perf_counter() - start >= added_ms / 1000


@pytest.mark.django_db
def test_cache_down_degrades_without_a_500(client, faults_file: Path, settings) -> None:
    settings.POPULAR_CACHE = True
    settings.READINESS_CACHE_S = 0  # /readyz must see the recovery at once, not its last result
    cache.set("probe", "1")
    assert cache.get("probe") == "1"
    popular = reverse("interactions_api:popular")
    assert client.get(popular).status_code == 200
    assert client.get(popular).json()["cached"] is True

    faults.fault_set(name=faults.CACHE_DOWN)
    assert cache.get("probe") is None
    assert cache.get("probe", "fallback") == "fallback"
    cache.set("other", "x")  # dropped, not raised
    assert cache.get_or_set("computed", lambda: 42) == 42
    response = client.get(popular)
    assert response.status_code == 200
    assert response.json()["cached"] is False
    assert _status(client, "places:list") == 200
    readyz = client.get(reverse("core:readyz"))
    assert readyz.status_code == 503
    assert "cache" in readyz.content.decode()

    faults.fault_clear(name=faults.CACHE_DOWN)
    assert cache.get("probe") == "1"
    assert _status(client, "core:readyz") == 200


def _pending_ids(huey) -> set[str]:
    return {task.id for task in huey.pending()}


@pytest.mark.django_db
def test_consumer_paused_holds_tasks_in_the_queue(faults_file: Path) -> None:
    from huey.contrib.djhuey import HUEY

    from chowist.interactions.tasks import drain_interactions

    if HUEY.immediate:
        pytest.skip("huey runs in immediate mode here: there is no queue to pause")
    faults.fault_set(name=faults.CONSUMER_PAUSED)
    task = drain_interactions.s()
    HUEY.enqueue(task)
    assert task.id in _pending_ids(HUEY)
    assert HUEY.dequeue() is None
    assert task.id in _pending_ids(HUEY)

    faults.fault_clear(name=faults.CONSUMER_PAUSED)
    seen = set()
    while (dequeued := HUEY.dequeue()) is not None and task.id not in seen:
        seen.add(dequeued.id)
    assert task.id in seen


@pytest.mark.slow
def test_a_paused_consumer_process_runs_held_tasks_after_clearing(
    faults_file: Path, child_env, settings, tmp_path: Path
) -> None:
    from huey.contrib.djhuey import HUEY

    from chowist.interactions.tasks import drain_interactions
    from conftest import free_port
    from experiments.lab.appserver import consumer_start
    from experiments.lab.procs import log_probe

    if HUEY.immediate:
        pytest.skip("huey runs in immediate mode here: there is no queue to pause")
    port = free_port()
    env = {**child_env, "FAULTS_FILE": str(faults_file), "CONSUMER_METRICS_PORT": str(port)}
    env["HUEY_SQLITE_PATH"] = str(settings.HUEY_SQLITE_PATH)
    faults.fault_set(name=faults.CONSUMER_PAUSED)
    log = tmp_path / "consumer.log"
    consumer = consumer_start(env=env, log_path=log, ready=[log_probe(log, "consumer started")])
    try:
        task = drain_interactions.s()
        HUEY.enqueue(task)
        # Many polls and flag re-reads go by: the task must still be waiting.
        time.sleep(faults.FAULTS_RECHECK_S * 4)
        assert consumer.alive(), log.read_text()
        assert task.id in _pending_ids(HUEY)

        faults.fault_clear(name=faults.CONSUMER_PAUSED)
        deadline = time.monotonic() + 15
        while task.id in _pending_ids(HUEY) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert task.id not in _pending_ids(HUEY)
        assert "consumer_resumed" in log.read_text()
    finally:
        consumer.stop()


def test_unknown_fault_bad_value_and_unknown_view_are_refused(faults_file: Path) -> None:
    with pytest.raises(faults.FaultError, match="unknown fault"):
        faults.fault_set(name="disk_full")
    with pytest.raises(faults.FaultError, match="between 0 and 1"):
        faults.fault_set(name=faults.HTTP_5XX, value=1.5)
    with pytest.raises(faults.FaultError, match="unknown view"):
        faults.fault_set(name=faults.HTTP_LATENCY, views=["places:nope"])
    with pytest.raises(faults.FaultError, match="no --value"):
        faults.fault_set(name=faults.CACHE_DOWN, value=1)
    with pytest.raises(faults.FaultError, match="status"):
        faults.fault_set(name=faults.HTTP_5XX, status=502)
    assert faults.faults_active() == {}


def test_refused_in_production_unless_allowed(faults_file: Path, settings) -> None:
    faults.fault_set(name=faults.CACHE_DOWN)
    settings.IS_PRODUCTION = True
    settings.FAULTS_ALLOW_IN_PRODUCTION = False
    with pytest.raises(faults.FaultsRefused):
        faults.fault_set(name=faults.HTTP_5XX)
    with pytest.raises(CommandError, match="production"):
        call_command("fault", "set", "http_5xx")
    # A file left over from testing is not obeyed either.
    assert faults.faults_reload() == {}

    settings.FAULTS_ALLOW_IN_PRODUCTION = True
    assert set(faults.faults_reload()) == {faults.CACHE_DOWN}
    faults.fault_set(name=faults.HTTP_5XX)
    assert set(faults.faults_active()) == {faults.CACHE_DOWN, faults.HTTP_5XX}


def test_every_change_is_logged_and_exported(faults_file: Path) -> None:
    with capture_logs() as logs:
        faults.fault_set(name=faults.HTTP_LATENCY, value=50, views=["places:detail"])
        faults.fault_clear(name=faults.HTTP_LATENCY)
        faults.fault_set(name=faults.CONSUMER_PAUSED)
        faults.faults_clear_all()
    changes = [(e["fault"], e["action"]) for e in logs if e["event"] == "fault_changed"]
    assert changes == [
        ("http_latency", "set"),
        ("http_latency", "clear"),
        ("consumer_paused", "set"),
        ("consumer_paused", "clear"),
    ]
    set_event = next(e for e in logs if e["event"] == "fault_changed")
    assert set_event["value"] == 50 and set_event["views"] == ["places:detail"]

    faults.fault_set(name=faults.CONSUMER_PAUSED)
    assert REGISTRY.get_sample_value("chowist_fault_active", {"fault": "consumer_paused"}) == 1
    assert REGISTRY.get_sample_value("chowist_fault_active", {"fault": "cache_down"}) == 0
    faults.fault_clear(name=faults.CONSUMER_PAUSED)
    assert REGISTRY.get_sample_value("chowist_fault_active", {"fault": "consumer_paused"}) == 0


def test_other_processes_see_changes_within_the_recheck_interval(faults_file: Path) -> None:
    faults.faults_active()
    # Another process (manage.py fault) writes the file; this process notices on its own.
    faults_file.write_text('{"version": 1, "faults": {"cache_down": {"value": null, "views": []}}}')
    deadline = time.monotonic() + faults.FAULTS_RECHECK_S * 4
    while faults.CACHE_DOWN not in faults.faults_active() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert faults.CACHE_DOWN in faults.faults_active()


def test_a_broken_file_means_no_faults(faults_file: Path) -> None:
    faults_file.write_text("{not json")
    assert faults.faults_reload() == {}


def test_the_command(faults_file: Path, capsys) -> None:
    call_command("fault", "set", "http_5xx", "--value", "0.25", "--views", "places:detail,api:place-detail")
    call_command("fault", "list")
    out = capsys.readouterr().out
    assert "on   http_5xx" in out and "value=0.25" in out and "places:detail,api:place-detail" in out
    assert "off  cache_down" in out
    call_command("fault", "clear", "http_5xx")
    call_command("fault", "set", "consumer_paused")
    call_command("fault", "clear-all")
    assert faults.faults_reload() == {}
    with pytest.raises(CommandError, match="unknown view"):
        call_command("fault", "set", "http_latency", "--views", "nowhere")
