"""Backing services of the `services` profile (PostgreSQL, Redis), made ready before the app starts."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse

from experiments.lab.procs import tcp_ok

CONNECT_TIMEOUT_S = 5
LAST_REDIS_DB = 15


class ServiceUnavailable(RuntimeError):
    pass


def database_ensure(*, url: str) -> bool:
    """Create the database named in `url` when it does not exist. True when it was created."""
    import psycopg
    from psycopg import sql

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name:
        raise ServiceUnavailable(f"DATABASE_URL {url!r} names no database")
    admin_url = urlunparse(parsed._replace(path="/postgres"))
    try:
        with psycopg.connect(admin_url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(
            f"PostgreSQL is not reachable at {parsed.hostname}:{parsed.port or 5432}: {exc}"
        ) from exc


def redis_ensure(*, url: str) -> None:
    parsed = urlparse(url)
    ok, detail = tcp_ok(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    if not ok:
        raise ServiceUnavailable(f"Redis is not reachable ({detail}); start redis-server or set REDIS_URL")


def redis_neighbour_db(url: str) -> str:
    """The same Redis, next database number: the cache must not share huey's database (cache.clear() is FLUSHDB)."""
    parsed = urlparse(url)
    raw = parsed.path.lstrip("/") or "0"
    current = int(raw) if raw.isdigit() else 0
    # Redis has databases 0-15 by default; from the last one step back rather than wrap onto database 0.
    number = current + 1 if current < LAST_REDIS_DB else current - 1
    return urlunparse(parsed._replace(path=f"/{number}"))


def pgbouncer_url(*, database_url: str, host: str, port: int) -> str:
    parsed = urlparse(database_url)
    auth = f"{parsed.username}@" if parsed.username else ""
    return urlunparse(parsed._replace(netloc=f"{auth}{host}:{port}"))
