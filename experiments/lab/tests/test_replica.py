"""A real streaming replica (pg_basebackup of a PostgreSQL primary, hot standby on its own port) behind the app:
reads go to it, a client reads its own writes from the primary, and a replica that dies costs no 5xx.

The primary is a throwaway cluster (experiments/lab/throwaway.py), not the shared server on 5432: a shared server
need not accept replication connections (this one's pg_hba.conf has no replication line, and other runs use it),
and a replica of a small private cluster catches up in a moment instead of replaying everyone's WAL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from conftest import free_port
from experiments.lab.appserver import gunicorn_argv
from experiments.lab.procs import Process, http_probe, start
from experiments.lab.replica import (
    ReplicaError,
    ReplicaSpec,
    replica_argv,
    replica_check_primary,
    replica_create,
    replica_process_user,
    replica_wait_caught_up,
)
from experiments.lab.throwaway import throwaway_postgres

ROOT = Path(__file__).resolve().parents[3]
DATABASE = "chowist_replica"
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
SEED = ["--places", "20", "--users", "6", "--reviews", "40", "--interactions", "100", "--seed", "3"]
REVIEWER = "demo00001"
CATCH_UP_TIMEOUT_S = 120
# Above what a cloned postgresql.conf holds, and on the primary's command line: the standby must take the
# primary's value or refuse to start (as scaling-journey's did against a primary started with 300).
PRIMARY_MAX_CONNECTIONS = 150


def _in_recovery(url: str) -> tuple[bool, str]:
    """Readiness of a hot standby: it accepts connections and says it is replaying."""
    try:
        return _query(url, "SELECT pg_is_in_recovery()") is True, f"{url} is not in recovery"
    except Exception as exc:  # not ready yet, whatever the reason
        return False, str(exc)


@pytest.fixture
def primary_url() -> Iterator[str]:
    with throwaway_postgres(max_connections=PRIMARY_MAX_CONNECTIONS) as server:
        server.create_database(DATABASE)
        url = server.url(DATABASE)
        env = {**os.environ, "DJANGO_ENV": "test", "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
        for command in (["migrate", "-v0"], ["seed_demo", *SEED]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, timeout=300)
        yield url


@pytest.fixture
def replica(primary_url: str) -> Iterator[tuple[ReplicaSpec, Process]]:
    if shutil.which("pg_basebackup") is None:
        pytest.skip("pg_basebackup is not installed (apt-get install postgresql-client)")
    # Not under pytest's tmp_path: that is private to root and the replica runs as the postgres user.
    base = Path(tempfile.mkdtemp(prefix="chowist-replica-"))
    base.chmod(0o755)
    spec = ReplicaSpec(primary_url=primary_url, data_dir=base / "data", port=free_port(), run_as="postgres")
    try:
        replica_check_primary(spec)
    except ReplicaError as exc:
        shutil.rmtree(base)
        pytest.skip(str(exc))
    log = base / "replica.log"
    replica_create(spec, log=log)
    user = replica_process_user(spec)
    process = None
    try:
        process = start(
            replica_argv(spec),
            name="replica",
            log_path=log,
            user=user,
            ready=[lambda: _in_recovery(spec.url())],
            ready_timeout_s=READY_TIMEOUT_S,
        )
        yield spec, process
    finally:
        if process is not None:
            process.stop(sig=signal.SIGINT, timeout_s=STOP_TIMEOUT_S)  # fast shutdown
        shutil.rmtree(base, ignore_errors=True)


def _query(url: str, statement: str):
    import psycopg

    with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
        return conn.execute(statement).fetchone()[0]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _client() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), NoRedirect())


def _fetch(client, url: str, data: dict | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with client.open(url, data=body, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metric(metrics_url: str, name: str, **labels: str) -> float:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.slow
def test_reads_use_the_replica_own_writes_the_primary_and_a_dead_replica_costs_no_5xx(replica, tmp_path) -> None:
    spec, replica_process = replica
    primary_url = spec.primary_url
    replica_url = spec.url()
    replica_wait_caught_up(primary_url=primary_url, replica_url=replica_url, timeout_s=CATCH_UP_TIMEOUT_S)
    port, metrics_port = free_port(), free_port()
    log = tmp_path / "app.log"
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DATABASE_URL": primary_url,
        "DATABASE_REPLICA_URL": replica_url,
        "DB_READ_YOUR_WRITES_S": "30",
        "DB_REPLICA_RETRY_S": "2",
        "VAR_DIR": str(tmp_path / "var"),
        "CACHE_URL": f"file://{tmp_path / 'cache'}",
        "APP_PORT": str(port),
        "APP_METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "GUNICORN_WORKERS": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    base, metrics = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"
    app = start(
        gunicorn_argv(),
        name="gunicorn",
        log_path=log,
        env=env,
        cwd=ROOT,
        ready=[http_probe(base + "/readyz")],
        ready_timeout_s=READY_TIMEOUT_S,
    )
    try:
        anonymous, reviewer = _client(), _client()
        place_id = json.loads(_fetch(anonymous, base + "/api/places/")[1])["results"][0]["id"]
        assert _metric(metrics, "chowist_db_read_routes_total", database="replica") > 0

        def authors(client) -> dict[str, int]:
            code, body = _fetch(client, base + f"/api/places/{place_id}/")
            assert code == 200, body[:300]
            return {r["author"]: r["rating"] for r in json.loads(body)["recent_reviews"]}

        rating = 1 if authors(anonymous).get(REVIEWER) != 1 else 2

        # An interaction is fire-and-forget (never read back by its sender): it must not pin the client.
        request = urllib.request.Request(
            base + f"/api/places/{place_id}/interactions/",
            data=json.dumps({"kind": "view"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with anonymous.open(request, timeout=10) as response:
            assert response.status == 202
            assert "chowist_primary" not in (response.headers.get("Set-Cookie") or "")
        replica_reads = _metric(metrics, "chowist_db_read_routes_total", database="replica")
        # A search no page cache holds yet: its reads reach a database, the replica.
        assert _fetch(anonymous, base + "/api/places/?q=no-pin-after-interaction")[0] == 200
        assert _metric(metrics, "chowist_db_read_routes_total", database="replica") > replica_reads

        # Replay paused: the replica now lags by everything written from here on.
        _query(replica_url, "SELECT pg_wal_replay_pause()")
        login = _fetch(reviewer, base + "/accounts/login/")[1]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)
        code, _ = _fetch(
            reviewer,
            base + "/accounts/login/",
            {"username": REVIEWER, "password": "chowist-demo", "csrfmiddlewaretoken": token},
        )
        assert code == 302
        detail = _fetch(reviewer, base + f"/places/{place_id}/")[1]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', detail).group(1)
        code, _ = _fetch(
            reviewer,
            base + f"/places/{place_id}/review/",
            {"rating": str(rating), "csrfmiddlewaretoken": token},
        )
        assert code == 302

        # The writer reads its own write (from the primary); a reader without writes still sees the replica.
        assert authors(reviewer).get(REVIEWER) == rating
        assert authors(anonymous).get(REVIEWER) != rating
        _query(replica_url, "SELECT pg_wal_replay_resume()")
        replica_wait_caught_up(primary_url=primary_url, replica_url=replica_url, timeout_s=CATCH_UP_TIMEOUT_S)
        assert authors(anonymous).get(REVIEWER) == rating

        # The replica dies: every read still answers, from the primary, with a log line and a metric.
        replica_process.stop(sig=signal.SIGINT, timeout_s=STOP_TIMEOUT_S)
        for _ in range(5):
            for path in ["/api/places/", f"/api/places/{place_id}/", f"/places/{place_id}/", "/places/"]:
                code, body = _fetch(anonymous, base + path)
                assert code == 200, (path, code, body[:300])
        assert _metric(metrics, "chowist_db_replica_fallbacks_total") >= 1
        assert _metric(metrics, "chowist_db_read_routes_total", database="primary", reason="replica_down") > 0
        assert "replica_unavailable" in log.read_text()
    finally:
        app.stop(timeout_s=STOP_TIMEOUT_S)


@pytest.mark.slow
def test_an_experiment_that_needs_a_replica_is_refused_up_front_naming_the_pg_hba_line(tmp_path) -> None:
    from experiments.lab import Lab, LabError
    from experiments.lab.tests.isolated import isolated_config

    with throwaway_postgres() as server:
        lab = Lab(isolated_config(tmp_path, database_url=server.url("chowist_lab")))
        lab.replica_preflight()  # initdb's pg_hba.conf allows replication from 127.0.0.1

        hba = server.data_dir / "pg_hba.conf"
        hba.write_text("".join(line for line in hba.open() if "replication" not in line))
        _query(server.url("postgres"), "SELECT pg_reload_conf()")
        with pytest.raises(LabError, match=r"host replication postgres 127\.0\.0\.1/32 trust"):
            lab.replica_preflight()
