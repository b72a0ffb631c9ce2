"""Fault matrix (slow, real processes): each case states the 5xx it burned, how long recovery took, and
proves that nothing acknowledged (a 202) was lost.

Figures are printed (`pytest -s`) and bounded by assertions; they are noisy on a shared 2-core box.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chowist.interactions.models import Interaction
from chowist.places.tests.factories import make_place
from chowist.tests.conftest import ROOT, gunicorn_running

LOAD_THREADS = 4
RECOVERY_BOUND_S = 15.0


@dataclass
class LoadResult:
    accepted_ids: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    # (monotonic time, ok) per request: recovery is measured from the fault to the last failure.
    timeline: list[tuple[float, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _post_interaction(base: str, place_id: int) -> tuple[int | str, int | None]:
    request = urllib.request.Request(
        f"{base}/api/places/{place_id}/interactions/",
        data=json.dumps({"kind": "view"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())["id"]
    except urllib.error.HTTPError as exc:
        return exc.code, None
    # A worker SIGKILLed between its headers and its body leaves IncompleteRead (an HTTPException, not an
    # OSError): no answer, like a reset. Uncaught, it ended that load thread for the rest of the case.
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__, None


def _get(url: str) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__


def _load(base: str, place_id: int, stop: threading.Event, result: LoadResult, reads: tuple[str, ...]) -> None:
    """POST interactions; with `reads`, each POST is followed by a GET of the next path (cached pages)."""
    n = 0
    while not stop.is_set():
        status, accepted = _post_interaction(base, place_id)
        with result.lock:
            result.statuses[status] += 1
            result.timeline.append((time.monotonic(), status == 202))
            if status == 202 and accepted is not None:
                result.accepted_ids.append(accepted)
        if reads:
            status = _get(base + reads[n % len(reads)])
            n += 1
            with result.lock:
                result.statuses[f"GET {status}"] += 1
                result.timeline.append((time.monotonic(), status == 200))


def _run_load(
    base: str, place_id: int, *, seconds: float, fault, fault_at_s: float, reads: tuple[str, ...] = ()
) -> tuple[LoadResult, float]:
    """Load for `seconds`, calling fault() at fault_at_s; returns the result and the fault's time."""
    result, stop = LoadResult(), threading.Event()
    threads = [threading.Thread(target=_load, args=(base, place_id, stop, result, reads)) for _ in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    time.sleep(fault_at_s)
    fault_time = time.monotonic()
    fault()
    time.sleep(max(0.0, seconds - fault_at_s))
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return result, fault_time


def _five_xx(statuses: Counter) -> int:
    """5xx answers to POSTs and GETs (a connection error is no answer, so no 5xx)."""
    codes = ((str(status).removeprefix("GET "), n) for status, n in statuses.items())
    return sum(n for code, n in codes if code.isdigit() and int(code) >= 500)


def _recovery_s(result: LoadResult, fault_time: float) -> float:
    failures = [t for t, ok in result.timeline if not ok and t >= fault_time]
    return (max(failures) - fault_time) if failures else 0.0


def _worker_pids(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


@pytest.mark.slow
def test_sigkill_of_one_gunicorn_worker_under_load(gunicorn_two_workers):
    app = gunicorn_two_workers
    place = make_place()
    workers_before = _worker_pids(app.pid)
    assert len(workers_before) == 2

    def kill_one_worker() -> None:
        os.kill(workers_before[0], signal.SIGKILL)

    result, fault_time = _run_load(app.base, place.pk, seconds=8, fault=kill_one_worker, fault_at_s=3)
    five_xx = _five_xx(result.statuses)
    recovery = _recovery_s(result, fault_time)
    # The master replaces the dead worker.
    deadline = time.monotonic() + RECOVERY_BOUND_S
    while len(_worker_pids(app.pid)) < 2 or workers_before[0] in _worker_pids(app.pid):
        assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
        time.sleep(0.2)
    stored = set(Interaction.objects.filter(pk__in=result.accepted_ids).values_list("pk", flat=True))
    lost = set(result.accepted_ids) - stored
    print(
        f"\nfault matrix | gunicorn worker SIGKILL | requests {sum(result.statuses.values())} "
        f"| statuses {dict(result.statuses)} | 5xx {five_xx} | recovery {recovery:.2f} s "
        f"| acknowledged {len(result.accepted_ids)} lost {len(lost)}"
    )
    assert not lost
    # In-flight requests on the killed worker lose their connection (never acknowledged); no 5xx is burned.
    assert five_xx == 0, result.statuses
    assert recovery < RECOVERY_BOUND_S


@contextmanager
def _small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root with CAP_SYS_ADMIN needed): {mounted.stderr.decode()[:200]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(path: Path) -> Path:
    """Fill the volume to the last byte with one file (ENOSPC for whoever writes next)."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 16, 1 << 10, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.slow
def test_sqlite_disk_full_under_load(child_env, tmp_path):
    """The SQLite file on a 16 MiB tmpfs, filled to the last byte under load, then freed."""
    volume = tmp_path / "volume"
    with _small_tmpfs(volume, "16m"):
        env = {**child_env, "DATABASE_URL": f"sqlite:///{volume / 'chowist.sqlite3'}"}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120
        )
        subprocess.run(
            [sys.executable, "manage.py", "seed_demo", "--places", "3", "--users", "1", "--reviews", "0",
             "--interactions", "0", "--seed", "1"],
            cwd=ROOT, env=env, check=True, timeout=120,
        )  # fmt: skip
        with gunicorn_running(env, GUNICORN_WORKERS="2") as app:
            place_id = json.loads(urllib.request.urlopen(f"{app.base}/api/places/", timeout=10).read())["results"][0][
                "id"
            ]
            filler: list[Path] = []
            result, _ = _run_load(
                app.base, place_id, seconds=6, fault=lambda: filler.append(_fill(volume)), fault_at_s=2
            )
            during = dict(result.statuses)
            five_xx_full = _five_xx(result.statuses)
            # Room again: the app must recover by itself (no restart).
            filler[0].unlink()
            freed_at = time.monotonic()
            recovered_after = None
            deadline = freed_at + RECOVERY_BOUND_S
            while time.monotonic() < deadline:
                status, accepted = _post_interaction(app.base, place_id)
                if status == 202:
                    result.accepted_ids.append(accepted)
                    recovered_after = time.monotonic() - freed_at
                    break
                time.sleep(0.1)
        with sqlite3.connect(volume / "chowist.sqlite3") as db:
            stored = {row[0] for row in db.execute("SELECT id FROM interactions_interaction")}
        lost = set(result.accepted_ids) - stored
    print(
        f"\nfault matrix | SQLite disk full | statuses while full {during} | 5xx {five_xx_full} "
        f"| recovery after freeing {recovered_after} s | acknowledged {len(result.accepted_ids)} lost {len(lost)}"
    )
    assert not lost
    assert recovered_after is not None and recovered_after < RECOVERY_BOUND_S
    # Disk full is the database being unavailable: a counted 503 with Retry-After, never a bare 500.
    assert 500 not in during, during


QUEUED_TASKS = ("make_place_thumbnail", "send_review_confirmation", "refresh_popular", "drain_interactions")


def _queued(huey_db: Path) -> dict[int, str]:
    """The tasks waiting in the huey SQLite queue, by row id (read straight from its file: fast enough to catch a
    dequeue as it happens)."""
    queued = {}
    with sqlite3.connect(huey_db, timeout=5) as db:
        for row_id, data in db.execute("SELECT id, data FROM task ORDER BY id"):
            blob = bytes(data)
            for name in QUEUED_TASKS:
                if name.encode() in blob:
                    queued[row_id] = name
    return queued


def _queued_names(huey_db: Path, names: tuple[str, ...] = QUEUED_TASKS[:2]) -> list[str]:
    return [name for name in _queued(huey_db).values() if name in names]


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True)


def _consumer_env(child_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """One consumer thread on a SQLite queue of this test's own, e-mails on its stdout (its log), and no lost-job
    sweep until the test asks for one (JOBS_LOST_AFTER_S=1 on the restart)."""
    from conftest import free_port

    env = {
        **child_env,
        "CONSUMER_METRICS_PORT": str(free_port()),
        "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite3"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "EMAIL_URL": "console://",
        "HUEY_WORKERS": "1",
        "JOBS_LOST_AFTER_S": "3600",
    }
    env.pop("REDIS_URL", None)
    return env


def _queue_tasks(env: dict[str, str], calls: str) -> None:
    """Queue tasks the way the app does (their module's function call), from a child with the consumer's env."""
    _manage(
        env,
        "shell",
        "--no-imports",
        "-c",
        f"from chowist.places.tasks import *; from chowist.interactions.tasks import *; {calls}",
    )


def _consumer_killed_holding(env: dict[str, str], row_id: int, log_path: Path) -> float:
    """Start a consumer, SIGKILL it as soon as it has taken queue row `row_id`; the kill's time.

    Every query of the consumer takes 0.8 s (db_latency, set here and cleared after the kill), so the task is
    still in its first query when the kill lands. No readiness probe: the metrics scrape queries the inbox, 0.8 s
    each, and the task would be done by the time it answered."""
    from experiments.lab.appserver import consumer_start

    huey_db = Path(env["HUEY_SQLITE_PATH"])
    _manage(env, "fault", "set", "db_latency", "--value", "800")
    consumer = consumer_start(env=env, log_path=log_path, ready=())
    killed = False
    try:
        deadline = time.monotonic() + 30
        while row_id in _queued(huey_db):
            assert time.monotonic() < deadline, f"the consumer never took queue row {row_id}"
            time.sleep(0.005)
        consumer.stop(sig=signal.SIGKILL, timeout_s=10)
        killed = True
        return time.monotonic()
    finally:
        if not killed:
            consumer.stop(sig=signal.SIGKILL, timeout_s=10)
        _manage(env, "fault", "clear-all")


def _consumer_restarted_until(env: dict[str, str], done, log_path: Path, *, what: str) -> None:
    """Start a consumer whose start-up sweep treats anything older than 1 s as lost; wait until done()."""
    from experiments.lab.appserver import consumer_start

    time.sleep(1.2)
    consumer = consumer_start(env={**env, "JOBS_LOST_AFTER_S": "1"}, log_path=log_path)
    try:
        deadline = time.monotonic() + 60
        while not done():
            assert time.monotonic() < deadline, f"{what} never happened after the consumer's restart"
            time.sleep(0.1)
    finally:
        assert consumer.stop() == 0


def _mails(*logs: Path) -> int:
    """Confirmation e-mails the console backend wrote to these consumer logs."""
    return sum(log.read_text(errors="replace").count("Subject: Your review of") for log in logs if log.exists())


@pytest.mark.slow
def test_consumer_sigkilled_with_a_thumbnail_in_hand_loses_nothing(child_env, tmp_path):
    """A task dequeued and then lost to a SIGKILL (huey acknowledges on dequeue): the restarted consumer's
    sweep finds the thumbnail and the confirmation e-mail missing and queues them again."""
    import io

    from django.contrib.auth.models import User
    from django.core.files.base import ContentFile
    from django.test import override_settings
    from PIL import Image

    from chowist.places.models import Review

    env = _consumer_env(child_env, tmp_path)
    huey_db = Path(env["HUEY_SQLITE_PATH"])
    with override_settings(MEDIA_ROOT=env["MEDIA_ROOT"]):
        place = make_place()
        buffer = io.BytesIO()
        Image.new("RGB", (1600, 1200), (90, 30, 30)).save(buffer, format="PNG")
        place.photo.save("photo.png", ContentFile(buffer.getvalue()), save=True)
    author = User.objects.create_user(username="mailme", email="mailme@example.com", password="x-Long-pass-2026")
    review = Review.objects.create(place=place, author=author, rating=5)
    _queue_tasks(env, f"make_place_thumbnail({place.pk}); send_review_confirmation({review.pk})")
    assert _queued_names(huey_db) == ["make_place_thumbnail", "send_review_confirmation"]
    thumbnail_row = next(row for row, name in _queued(huey_db).items() if name == "make_place_thumbnail")

    lost_at = _consumer_killed_holding(env, thumbnail_row, tmp_path / "worker-1.log")
    place.refresh_from_db()
    assert not place.thumbnail, "the kill must land while the thumbnail is in hand"
    lost = [n for n in ("make_place_thumbnail", "send_review_confirmation") if n not in _queued_names(huey_db)]
    assert "make_place_thumbnail" in lost

    def redone() -> bool:
        place.refresh_from_db()
        review.refresh_from_db()
        return bool(place.thumbnail) and review.confirmation_sent_at is not None

    _consumer_restarted_until(env, redone, tmp_path / "worker-2.log", what="the lost thumbnail and e-mail")
    recovery = time.monotonic() - lost_at
    print(
        f"\nfault matrix | consumer SIGKILL with tasks in hand | lost from the queue {lost} "
        f"| redone {recovery:.1f} s after the kill (restart + startup sweep) | 5xx 0 (no request path)"
    )


@pytest.mark.slow
def test_consumer_sigkilled_while_sending_a_confirmation_mails_it_once(child_env, tmp_path):
    """send_review_confirmation lost to a SIGKILL after dequeue: the restarted consumer's sweep sends it, once.

    Once-ish: the e-mail is stamped after it is sent, so a kill between the two would send it twice (at least
    once, never lost); this kill lands before the send (the review's first query takes 0.8 s)."""
    from django.contrib.auth.models import User

    from chowist.places.models import Review

    env = _consumer_env(child_env, tmp_path)
    huey_db = Path(env["HUEY_SQLITE_PATH"])
    place = make_place()
    author = User.objects.create_user(username="mailonce", email="mailonce@example.com", password="x-Long-pass-2026")
    review = Review.objects.create(place=place, author=author, rating=4)
    _queue_tasks(env, f"send_review_confirmation({review.pk})")
    [(row, name)] = _queued(huey_db).items()
    assert name == "send_review_confirmation"

    killed_log, restarted_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    lost_at = _consumer_killed_holding(env, row, killed_log)
    review.refresh_from_db()
    assert review.confirmation_sent_at is None and _mails(killed_log) == 0, "the kill must land before the send"
    assert "send_review_confirmation" not in _queued(huey_db).values(), "the kill must lose the task"

    def confirmed() -> bool:
        review.refresh_from_db()
        return review.confirmation_sent_at is not None

    _consumer_restarted_until(env, confirmed, restarted_log, what="the lost confirmation e-mail")
    recovery = time.monotonic() - lost_at
    sent = _mails(killed_log, restarted_log)
    print(
        f"\nfault matrix | consumer SIGKILL holding send_review_confirmation | e-mails sent {sent} "
        f"| redone {recovery:.1f} s after the kill (restart + startup sweep) | 5xx 0 (no request path) | lost 0"
    )
    assert sent == 1, f"the confirmation must be sent exactly once, sent {sent} times"


def _popular_cached(env: dict[str, str]) -> dict | None:
    """The 7-day popular list as the consumer warmed it in the shared cache, or None."""
    script = (
        "import json; from django.core.cache import cache; from chowist.interactions.selectors import _CACHE_KEY;"
        "print(json.dumps(cache.get(_CACHE_KEY.format(days=7))))"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_consumer_sigkilled_during_refresh_popular_recovers_the_popular_list(child_env, tmp_path):
    """refresh_popular lost to a SIGKILL mid-drain: the inbox rows it held are drained by the restarted consumer
    (start-up drain) exactly once, and the popular list it never warmed is warmed by the start-up periodic run."""
    from django.utils import timezone

    from chowist.interactions.models import PlaceDailyCounter

    env = _consumer_env(child_env, tmp_path)
    # One row per batch: the kill lands with most of the inbox still pending.
    env["INTERACTIONS_DRAIN_BATCH"] = "1"
    huey_db = Path(env["HUEY_SQLITE_PATH"])
    place = make_place()
    n_views = 12
    now = timezone.now()
    Interaction.objects.bulk_create([Interaction(place=place, kind="view", created_at=now) for _ in range(n_views)])
    _queue_tasks(env, "refresh_popular()")
    [(row, name)] = _queued(huey_db).items()
    assert name == "refresh_popular"

    lost_at = _consumer_killed_holding(env, row, tmp_path / "worker-1.log")
    pending_after_kill = Interaction.objects.filter(place=place, processed_at__isnull=True).count()
    assert pending_after_kill > 0, "the kill must land before refresh_popular drained the inbox"
    assert _popular_cached(env) is None, "the kill must land before refresh_popular warmed the list"

    def recovered() -> bool:
        if Interaction.objects.filter(place=place, processed_at__isnull=True).exists():
            return False
        popular = _popular_cached(env)
        return popular is not None and any(item["place_id"] == place.pk for item in popular["items"])

    _consumer_restarted_until(env, recovered, tmp_path / "worker-2.log", what="the drain and the popular list")
    recovery = time.monotonic() - lost_at
    views = sum(PlaceDailyCounter.objects.filter(place=place).values_list("views", flat=True))
    [item] = [item for item in _popular_cached(env)["items"] if item["place_id"] == place.pk]
    print(
        f"\nfault matrix | consumer SIGKILL holding refresh_popular | {pending_after_kill} of {n_views} views "
        f"pending at the kill | counted after restart {views} | popular list views {item['views']} "
        f"| recovered {recovery:.1f} s after the kill | 5xx 0 (no request path) | lost {n_views - views}"
    )
    assert views == n_views, f"{n_views} views must be counted exactly once, counted {views}"
    assert item["views"] == n_views


# --- the services profile: Redis (queue and cache) and PostgreSQL restarted under load ------------------------
# How long the throwaway Redis stays down in its restart: long enough for the load to meet the outage.
REDIS_DOWN_S = 2.0
DRAIN_TIMEOUT_S = 45.0


def _inbox_state(cursor, place_id: int) -> tuple[set[int], int, int]:
    """(ids of the place's inbox rows, how many are still pending, views its daily counters hold), through any
    DB-API cursor (Django's on SQLite or PostgreSQL, psycopg's)."""
    cursor.execute(
        "SELECT id, CASE WHEN processed_at IS NULL THEN 1 ELSE 0 END FROM interactions_interaction WHERE place_id = %s",
        [place_id],
    )
    rows = cursor.fetchall()
    cursor.execute("SELECT COALESCE(SUM(views), 0) FROM interactions_placedailycounter WHERE place_id = %s", [place_id])
    return {row[0] for row in rows}, sum(row[1] for row in rows), int(cursor.fetchone()[0])


def _drained_once(state, *, timeout_s: float = DRAIN_TIMEOUT_S) -> tuple[set[int], int, float]:
    """Wait until every inbox row of the place is counted; (row ids, views counted, seconds waited). Each row
    must be counted exactly once: the views equal the rows."""
    started = time.monotonic()
    while True:
        ids, pending, counted = state()
        if pending == 0:
            assert counted == len(ids), f"{len(ids)} inbox rows counted as {counted} views (must be exactly once)"
            return ids, counted, time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"{pending} of {len(ids)} inbox rows still pending"
        time.sleep(0.2)


def _django_inbox_state(place_id: int) -> tuple[set[int], int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        return _inbox_state(cursor, place_id)


def _metric_sum(url: str, name: str) -> float:
    """Sum of a counter's samples over every label set, from a Prometheus text endpoint."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def _summary(case: str, result: LoadResult, *, recovery: float, lost: set[int], extra: str = "") -> str:
    return (
        f"\nfault matrix | {case} | requests {sum(result.statuses.values())} | statuses {dict(result.statuses)} "
        f"| 5xx {_five_xx(result.statuses)} | recovery {recovery:.2f} s "
        f"| acknowledged {len(result.accepted_ids)} lost {len(lost)}{extra}"
    )


@pytest.mark.slow
def test_redis_restarted_under_load(child_env, tmp_path):
    """Services profile: the huey queue (db 0) and the cache (db 1, page and fragment caches, popular lists) on
    one Redis, restarted without persistence under load. Reads degrade to the database, interactions are still
    accepted into the durable inbox (their drain request is logged as failed), and what the restart threw away
    (queued drains, the drain flag, cached pages) is redone by the next drain request or recomputed."""
    from conftest import free_port
    from experiments.lab.appserver import consumer_start
    from experiments.lab.throwaway import throwaway_redis

    with throwaway_redis(tmp_path / "redis") as redis_server:
        env = {
            **child_env,
            "REDIS_URL": redis_server.url(0),
            "CACHE_URL": redis_server.url(1),
            "CONSUMER_METRICS_PORT": str(free_port()),
        }
        place = make_place()
        reads = (f"/places/{place.pk}/", "/api/places/", f"/api/places/{place.pk}/", "/api/places/popular/")
        held: dict[str, int] = {}

        def restart() -> None:
            held.update(redis_server.held())
            redis_server.restart(down_s=REDIS_DOWN_S)

        consumer = consumer_start(env=env, log_path=tmp_path / "worker.log")
        try:
            with gunicorn_running(env, GUNICORN_WORKERS="2") as app:
                result, fault_time = _run_load(app.base, place.pk, seconds=9, fault=restart, fault_at_s=3, reads=reads)
                cache_failures = _metric_sum(app.metrics, "django_cache_get_fail_total")
            stored, counted, drain_s = _drained_once(lambda: _django_inbox_state(place.pk))
        finally:
            assert consumer.stop() == 0, "the consumer must survive the Redis restart and stop gracefully"
    recovery = _recovery_s(result, fault_time)
    lost = set(result.accepted_ids) - stored
    print(
        _summary(
            "Redis restarted (queue + cache, no persistence)",
            result,
            recovery=recovery,
            lost=lost,
            extra=f" | Redis held before the restart {held} (all dropped) | cache reads failed (served as misses) "
            f"{cache_failures:.0f} | inbox drained {drain_s:.1f} s after the load, {counted} views for {len(stored)} rows",
        )
    )
    assert cache_failures > 0, "the load never met the Redis outage (no failed cache read)"
    assert not lost, f"{len(lost)} acknowledged interactions lost"
    # A cache or queue outage degrades (misses, a drain request left to the next one): never a 5xx.
    assert _five_xx(result.statuses) == 0, f"5xx burned by the Redis restart: {dict(result.statuses)}"
    assert recovery < RECOVERY_BOUND_S, f"recovery took {recovery:.1f} s"


def _multipart(field_name: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "chowist-fault-matrix"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _logged_in_cookie(user) -> str:
    """Cookie header of a logged-in session (stored in the shared database) with a CSRF token pair."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}; csrftoken={CSRF_TOKEN}"


# Django accepts any well-formed secret that the cookie and the header agree on.
CSRF_TOKEN = "f" * 32


@pytest.mark.slow
def test_photo_upload_while_the_queue_is_down_is_accepted_and_thumbnailed_later(child_env, tmp_path):
    """huey's Redis down when a photo is uploaded: 202 (the photo is committed), not 500; the thumbnail whose task
    could not be queued is made by the lost-jobs sweep once the queue is back."""
    import io

    from PIL import Image

    from chowist.places.models import Place
    from chowist.places.tests.factories import make_user
    from conftest import free_port
    from experiments.lab.throwaway import throwaway_redis

    with throwaway_redis(tmp_path / "redis") as redis_server:
        env = {
            **child_env,
            "REDIS_URL": redis_server.url(0),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "CONSUMER_METRICS_PORT": str(free_port()),
        }
        place = make_place()
        buffer = io.BytesIO()
        Image.new("RGB", (800, 600), (30, 90, 30)).save(buffer, format="PNG")
        body, content_type = _multipart("photo", "photo.png", buffer.getvalue())
        headers = {"Content-Type": content_type, "Cookie": _logged_in_cookie(make_user(can_edit=True))}
        headers["X-CSRFToken"] = CSRF_TOKEN
        with gunicorn_running(env) as app:
            redis_server.stop()
            request = urllib.request.Request(
                f"{app.base}/api/places/{place.pk}/photo/", data=body, headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=20) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            uploaded_at = time.monotonic()
        place = Place.objects.get(pk=place.pk)
        assert status == 202, f"photo upload with the queue down answered {status}"
        assert place.photo and not place.thumbnail
        redis_server.start()
        _consumer_restarted_until(
            env,
            lambda: bool(Place.objects.get(pk=place.pk).thumbnail),
            tmp_path / "worker.log",
            what="the thumbnail whose task could not be queued",
        )
    print(
        f"\nfault matrix | photo upload with the queue down | status {status} | 5xx 0 "
        f"| thumbnail made {time.monotonic() - uploaded_at:.1f} s after the upload (queue back + start-up sweep) "
        "| lost 0"
    )


@pytest.mark.slow
def test_postgresql_restarted_under_load(child_env, tmp_path):
    """The database (a throwaway cluster) restarted with `pg_ctl restart -m fast` under load: requests during the
    restart are 503s with Retry-After, persistent connections are health-checked and replaced (CONN_HEALTH_CHECKS)
    so the app recovers by itself, and every 202 is in the inbox, counted once."""
    import psycopg
    from django.db import connection

    from experiments.lab.throwaway import throwaway_postgres

    if connection.vendor == "postgresql":
        # make test runs the suite on SQLite, then on PostgreSQL: this case never touches the test database.
        pytest.skip("restarts a throwaway cluster of its own, not the test database: it runs in the SQLite pass")
    from conftest import free_port
    from experiments.lab.appserver import consumer_start

    with throwaway_postgres() as pg:
        pg.create_database("chowist")
        env = {
            **child_env,
            "DATABASE_URL": pg.url("chowist"),
            "CONSUMER_METRICS_PORT": str(free_port()),
            "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite3"),
        }
        env.pop("REDIS_URL", None)
        _manage(env, "migrate", "--noinput", "-v", "0")
        _manage(
            env,
            "shell",
            "--no-imports",
            "-c",
            "from chowist.places.models import Place; Place.objects.create(name='Restart diner')",
        )
        with psycopg.connect(pg.url("chowist")) as conn:
            [(place_id,)] = conn.execute("SELECT id FROM places_place WHERE name = 'Restart diner'").fetchall()
        consumer = consumer_start(env=env, log_path=tmp_path / "worker.log")
        try:
            with gunicorn_running(env, GUNICORN_WORKERS="2") as app:
                reads = (f"/places/{place_id}/", f"/api/places/{place_id}/")
                result, fault_time = _run_load(
                    app.base, place_id, seconds=10, fault=pg.restart, fault_at_s=3, reads=reads
                )

            def state() -> tuple[set[int], int, int]:
                with psycopg.connect(pg.url("chowist")) as conn, conn.cursor() as cursor:
                    return _inbox_state(cursor, place_id)

            stored, counted, drain_s = _drained_once(state)
        finally:
            assert consumer.stop() == 0, "the consumer must survive the database restart and stop gracefully"
    recovery = _recovery_s(result, fault_time)
    lost = set(result.accepted_ids) - stored
    five_xx = _five_xx(result.statuses)
    print(
        _summary(
            "PostgreSQL restarted (pg_ctl restart -m fast)",
            result,
            recovery=recovery,
            lost=lost,
            extra=f" | inbox drained {drain_s:.1f} s after the load, {counted} views for {len(stored)} rows",
        )
    )
    assert not lost, f"{len(lost)} acknowledged interactions lost"
    assert recovery < RECOVERY_BOUND_S, f"recovery took {recovery:.1f} s ({five_xx} 5xx burned)"
    # The database being down is a 503 with Retry-After (counted), never a bare 500.
    assert 500 not in result.statuses and "GET 500" not in result.statuses, dict(result.statuses)


@pytest.mark.slow
def test_a_paused_redis_costs_a_miss_not_a_stalled_request(tmp_path) -> None:
    # SIGSTOP: the server accepts nothing and answers nothing, as a stalled one does (no connection refused).
    from django.utils.module_loading import import_string

    from chowist.dburl import cache_from_url
    from experiments.lab.throwaway import throwaway_redis

    with throwaway_redis(tmp_path) as redis_server:
        config = cache_from_url(redis_server.url(1), default_timeout=60, key_prefix="paused")
        backend = import_string(config.pop("BACKEND"))(config.pop("LOCATION"), config)
        backend.set("k", "v")
        assert backend.get("k") == "v"
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            assert backend.get("k", "missed") == "missed"
            waited = time.monotonic() - started
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        print(f"fault matrix | redis paused | cache read answered a miss after {waited:.2f} s")
        assert waited < 2.0
        assert backend.get("k") == "v"
