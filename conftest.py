"""Fixtures shared by every folder's tests: real services, real child processes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from experiments.lab.procs import free_port, tcp_ok

__all__ = ["PYTHON", "ROOT", "free_port"]

ROOT = Path(__file__).resolve().parent
PYTHON = sys.executable


REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis (database 15 by default, flushed per use by the tests that need it)."""
    from urllib.parse import urlparse

    parsed = urlparse(REDIS_TEST_URL)
    if not tcp_ok(parsed.hostname or "127.0.0.1", parsed.port or 6379, timeout_s=1)[0]:
        pytest.skip(f"Redis is not reachable at {REDIS_TEST_URL} (start redis-server or set TEST_REDIS_URL)")
    return REDIS_TEST_URL


def database_url_for(settings_dict: dict) -> str:
    """The URL a child process needs to reach the database this test process is using."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def child_env(transactional_db, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a child process (gunicorn, consumer, manage.py) that shares this test's database.

    Uses transactional_db so what the test writes is committed and visible to the child, and the
    child's writes are visible to the test.
    """
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env.update(
        {
            "DJANGO_ENV": "test",
            "DATABASE_URL": database_url_for(connection.settings_dict),
            "VAR_DIR": str(tmp_path / "var"),
            "CACHE_URL": f"file://{tmp_path / 'cache'}",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    # The pool and persistent connections of the parent are irrelevant to the child.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    yield env
