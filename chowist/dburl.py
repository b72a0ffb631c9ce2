"""Turn DATABASE_URL / CACHE_URL into Django settings dictionaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

MEMCACHED_TIMEOUT_S = 0.5
MEMCACHED_DEAD_TIMEOUT_S = 5
# A Redis that stalls (paused, swapping, a full network buffer) rather than refusing: without a socket timeout a
# cache read waits forever and holds the request's thread until gunicorn kills the worker. As for memcached, a
# cache that does not answer within this costs a miss (chowist/core/cache_backends.py's Degrading).
REDIS_CACHE_TIMEOUT_S = 0.5

# With metrics on, django-prometheus's backends (Django's own, counting connections, queries and their time);
# SQLite through observability's configured subclass of it.
_DB_ENGINES = {
    ("sqlite3", False): "django.db.backends.sqlite3",
    ("sqlite3", True): "observability.db_backends.sqlite3",
    ("postgresql", False): "django.db.backends.postgresql",
    ("postgresql", True): "django_prometheus.db.backends.postgresql",
}


def sqlite_database(path: Path, *, busy_timeout_s: float, metered: bool = False) -> dict[str, Any]:
    """SQLite tuned for a multi-process web server.

    WAL lets readers run beside the one writer; BEGIN IMMEDIATE takes the write lock up front so two
    writers queue on the busy timeout instead of failing with "database is locked" on lock upgrade.
    """
    return {
        "ENGINE": _DB_ENGINES["sqlite3", metered],
        "NAME": str(path),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": busy_timeout_s,
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                "PRAGMA synchronous=NORMAL;"
                f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)};"
                "PRAGMA foreign_keys=ON;"
            ),
        },
        "TEST": {"NAME": str(path.with_name(f"test_{path.name}"))},
    }


def database_from_url(
    url: str,
    *,
    conn_max_age: int,
    pool: bool,
    pool_min: int,
    pool_max: int,
    pgbouncer: bool,
    busy_timeout_s: float,
    metered: bool = False,
) -> dict[str, Any]:
    if url.startswith("sqlite:"):
        parsed = urlparse(url)
        raw_path = parsed.path if parsed.netloc == "" else f"/{parsed.netloc}{parsed.path}"
        # sqlite:///relative/path and sqlite:////absolute/path as in dj-database-url
        path = Path(raw_path[1:]) if raw_path.startswith("/") else Path(raw_path)
        return sqlite_database(path.resolve(), busy_timeout_s=busy_timeout_s, metered=metered)
    config = dj_database_url.parse(url, conn_max_age=conn_max_age)
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_URL scheme not supported: {url.split(':', 1)[0]}")
    config["ENGINE"] = _DB_ENGINES["postgresql", metered]
    options: dict[str, Any] = config.setdefault("OPTIONS", {})
    if pgbouncer:
        # Transaction pooling hands each transaction to any server connection: server-side cursors
        # and session state would leak between clients, and a second pool on top only adds latency.
        config["DISABLE_SERVER_SIDE_CURSORS"] = True
        config["CONN_MAX_AGE"] = 0
    elif pool:
        options["pool"] = {"min_size": pool_min, "max_size": pool_max, "timeout": 10}
        # Django refuses persistent connections together with its pool.
        config["CONN_MAX_AGE"] = 0
    config["CONN_HEALTH_CHECKS"] = not pool or pgbouncer
    return config


def _cache_backend(name: str, *, metered: bool) -> str:
    """chowist.core.cache_backends: faults always, django-prometheus's hit/miss counters when metered."""
    return f"chowist.core.cache_backends.{'Metered' if metered else ''}{name}"


# The file cache's size before it culls a random third of its entries. The full demo data's working set is four
# entries a place (API and HTML page, the detail fragment, the place's generation token): about 40,000 for
# 10,000 places. At Django's 300, or the 10,000 before, users-2000 culled all the time (a culled generation token
# retires its pages too) and most detail requests rendered. About 4 KB an entry on disk.
FILE_CACHE_MAX_ENTRIES = 100_000


def redis_url_with_timeout(url: str, *, timeout_s: float) -> str:
    """`url` with socket and connect timeouts in its query (redis-py's from_url reads them), unless it sets its own."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    for name in ("socket_timeout", "socket_connect_timeout"):
        query.setdefault(name, [f"{timeout_s:g}"])
    return urlunparse(parsed._replace(query=urlencode(query, doseq=True)))


def cache_from_url(
    url: str, *, default_timeout: int, key_prefix: str, alias: str = "default", metered: bool = False
) -> dict[str, Any]:
    parsed = urlparse(url)
    scheme = parsed.scheme
    common = {"TIMEOUT": default_timeout, "KEY_PREFIX": key_prefix, "ALIAS": alias}
    if scheme in {"redis", "rediss"}:
        return {
            "BACKEND": _cache_backend("RedisCache", metered=metered),
            "LOCATION": url,
            "OPTIONS": {"socket_timeout": REDIS_CACHE_TIMEOUT_S, "socket_connect_timeout": REDIS_CACHE_TIMEOUT_S},
            **common,
        }
    if scheme == "file":
        return {
            "BACKEND": _cache_backend("FileBasedCache", metered=metered),
            "LOCATION": parsed.path,
            "OPTIONS": {
                "MAX_ENTRIES": int(parse_qs(parsed.query).get("max_entries", [str(FILE_CACHE_MAX_ENTRIES)])[0])
            },
            **common,
        }
    if scheme == "memcached":
        return {
            "BACKEND": _cache_backend("PyMemcacheCache", metered=metered),
            "LOCATION": _memcached_servers(parsed.netloc, url),
            # Short timeouts: a cache that does not answer must cost a miss, not a stalled request.
            "OPTIONS": {
                "connect_timeout": MEMCACHED_TIMEOUT_S,
                "timeout": MEMCACHED_TIMEOUT_S,
                "no_delay": True,
                "use_pooling": True,
                # pymemcache's HashClient takes a failed server out for dead_timeout seconds, then retries it.
                "retry_attempts": 1,
                "dead_timeout": MEMCACHED_DEAD_TIMEOUT_S,
            },
            **common,
        }
    if scheme == "locmem":
        return {"BACKEND": _cache_backend("LocMemCache", metered=metered), "LOCATION": parsed.netloc, **common}
    if scheme == "dummy":
        return {"BACKEND": "django.core.cache.backends.dummy.DummyCache", **common}
    raise ImproperlyConfigured(
        f"CACHE_URL scheme not supported: {scheme!r} (use file://, redis://, memcached://, locmem://)"
    )


def _memcached_servers(netloc: str, url: str) -> list[str]:
    """`memcached://host:port[,host:port...]`: one or more servers (keys are hashed across them)."""
    servers = [server.strip() for server in netloc.split(",") if server.strip()]
    if not servers:
        raise ImproperlyConfigured(f"CACHE_URL {url!r} names no memcached server (memcached://host:port)")
    for server in servers:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise ImproperlyConfigured(f"CACHE_URL {url!r}: {server!r} is not host:port")
    return servers
