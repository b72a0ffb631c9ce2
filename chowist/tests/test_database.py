"""The embedded profile's SQLite is tuned for a multi-process server; URLs parse to what the lab expects."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from chowist.dburl import cache_from_url, database_from_url


@pytest.mark.django_db
def test_sqlite_runs_in_wal_with_a_busy_timeout() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite-only tuning; this run uses " + connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 1  # NORMAL
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 1000
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def _pg(url: str, **overrides: object) -> dict:
    options = {
        "conn_max_age": 600,
        "pool": False,
        "pool_min": 2,
        "pool_max": 8,
        "pgbouncer": False,
        "busy_timeout_s": 5,
    }
    options.update(overrides)
    return database_from_url(url, **options)


def test_postgres_url_with_django_pool() -> None:
    config = _pg("postgres://app:secret@db.internal:6432/chowist", pool=True)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 8, "timeout": 10}
    assert config["CONN_MAX_AGE"] == 0  # Django refuses persistent connections with its pool


def test_pgbouncer_disables_server_side_cursors_and_the_pool() -> None:
    config = _pg("postgres://postgres@127.0.0.1:6432/chowist", pool=True, pgbouncer=True)
    assert config["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert "pool" not in config["OPTIONS"]
    assert config["CONN_MAX_AGE"] == 0


def test_unknown_database_scheme_is_refused() -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="mysql"):
        _pg("mysql://root@127.0.0.1/chowist")


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("file:///tmp/chowist-cache", "FileBasedCache"),
        ("redis://127.0.0.1:6379/2", "RedisCache"),
        ("locmem://x", "LocMemCache"),
    ],
)
def test_cache_urls(url: str, backend: str) -> None:
    assert cache_from_url(url, default_timeout=60, key_prefix="c")["BACKEND"].endswith(backend)


def test_the_file_cache_holds_the_full_demo_datas_pages_before_culling() -> None:
    # 10,000 places x (API page, HTML page, detail fragment, generation token): below that it culls under load.
    options = cache_from_url("file:///tmp/c", default_timeout=60, key_prefix="c")["OPTIONS"]
    assert options["MAX_ENTRIES"] >= 4 * 10_000
    sized = cache_from_url("file:///tmp/c?max_entries=500", default_timeout=60, key_prefix="c")["OPTIONS"]
    assert sized["MAX_ENTRIES"] == 500


def test_the_queue_on_redis_times_out_instead_of_hanging() -> None:
    # huey refuses a url beside connection parameters: the timeouts travel in the URL (found when the services
    # profile would not start). Settings are read once per process, so a child builds them with REDIS_URL set.
    import subprocess
    import sys

    from chowist.dburl import redis_url_with_timeout

    assert redis_url_with_timeout("redis://h:1/2?socket_timeout=9", timeout_s=3) == (
        "redis://h:1/2?socket_timeout=9&socket_connect_timeout=3"
    )
    code = (
        "import django; django.setup(); from huey.contrib.djhuey import HUEY; "
        "kw = HUEY.storage.conn.connection_pool.connection_kwargs; "
        "print(type(HUEY).__name__, kw['socket_timeout'], kw['socket_connect_timeout'])"
    )
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/15", "DJANGO_SETTINGS_MODULE": "chowist.settings"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["RedisHuey", "3.0", "3.0"]


def test_default_cache_is_shared_between_processes() -> None:
    from django.conf import settings

    # gunicorn workers are separate processes: a per-process cache would make invalidation a lie.
    assert "locmem" not in settings.CACHES["default"]["BACKEND"].lower()


def test_metered_settings_use_django_prometheus_backends() -> None:
    assert _pg("postgres://postgres@127.0.0.1/chowist", metered=True)["ENGINE"] == (
        "django_prometheus.db.backends.postgresql"
    )
    assert database_from_url("sqlite:///tmp/x.sqlite3", **_SQLITE, metered=True)["ENGINE"] == (
        "observability.db_backends.sqlite3"
    )
    metered = cache_from_url("file:///tmp/c", default_timeout=60, key_prefix="c", metered=True)["BACKEND"]
    assert metered == "chowist.core.cache_backends.MeteredFileBasedCache"


_SQLITE = {"conn_max_age": 0, "pool": False, "pool_min": 0, "pool_max": 0, "pgbouncer": False, "busy_timeout_s": 5}
