"""Durable commits where the app promises durability.

SQLite runs in WAL with `synchronous=NORMAL` (chowist/dburl.py): a commit survives a process crash but not
an OS crash or power loss, because the WAL is not fsynced at each commit. That is fine for page views and
caches, but a 202 on POST /api/places/<id>/interactions/ promises the interaction is kept, so that one
write commits with `synchronous=FULL` (the WAL is fsynced before the 202 goes out). PostgreSQL's default
`synchronous_commit=on` already flushes every commit.

What it costs is measured by `chowist/core/tests/test_durability.py`: on the lab's disk one interaction's
commit went from 0.3 ms (NORMAL) to 3.7 ms (FULL), and SQLite holds its one write lock during the fsync, so
the embedded profile accepts at most a few hundred interactions per second. INTERACTIONS_DURABLE_COMMIT=off
trades that back (an OS crash may then lose the last acknowledged interactions).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections

SQLITE_FULL = 2
SQLITE_NORMAL = 1


@contextmanager
def durable_commit(*, using: str = "default") -> Iterator[None]:
    """Commits made inside the block are fsynced before they return (SQLite); a no-op elsewhere."""
    connection = connections[using]
    if not settings.INTERACTIONS_DURABLE_COMMIT:
        yield
        return
    # SQLite refuses to change the safety level inside a transaction; an enclosing one decides for itself.
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        previous = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA synchronous={SQLITE_FULL}")
    try:
        yield
    finally:
        # The connection is reused (CONN_MAX_AGE) by requests that do not need the fsync.
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous={int(previous)}")
