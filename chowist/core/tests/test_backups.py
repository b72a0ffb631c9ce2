"""`manage.py backup` / `restore`: a backup taken while writes go on restores, into a fresh database, to every
row as of one moment; a restore never replaces a database holding tables unless forced."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, connections
from psycopg import sql

from chowist.core.backups import BackupError, backup_create, backup_restore
from chowist.places.models import Category

RESTORED = "restored"
WRITER_MAX_ROWS = 400
WRITER_MAX_S = 20.0


def _pg_connect(settings_dict: dict, *, dbname: str) -> psycopg.Connection:
    return psycopg.connect(
        host=settings_dict.get("HOST") or "127.0.0.1",
        port=settings_dict.get("PORT") or 5432,
        user=settings_dict.get("USER") or "postgres",
        password=settings_dict.get("PASSWORD") or None,
        dbname=dbname,
        autocommit=True,
    )


def _drop_pg_database(settings_dict: dict) -> None:
    with _pg_connect(settings_dict, dbname="postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(settings_dict["NAME"])))


@pytest.fixture
def fresh_target(transactional_db, tmp_path: Path) -> Iterator[dict]:
    """Settings of a database that does not exist yet (the test's alias "restored" is added to Django's)."""
    settings_dict = dict(connection.settings_dict)
    if connection.vendor == "sqlite":
        settings_dict["NAME"] = str(tmp_path / "restored.sqlite3")
    else:
        # The prefix keeps the test database's own suffix (e.g. _h7), so names on a shared server stay apart.
        settings_dict["NAME"] = "restore_" + connection.settings_dict["NAME"]
        _drop_pg_database(settings_dict)
    connections.settings[RESTORED] = settings_dict
    try:
        yield settings_dict
    finally:
        del connections[RESTORED]
        del connections.settings[RESTORED]
        if connection.vendor == "postgresql":
            _drop_pg_database(settings_dict)


def _rows_by_table(settings_dict: dict) -> dict[str, list[tuple]]:
    """Every row of every model's table, read with the plain driver (no Django, no type conversion)."""
    tables = sorted({m._meta.db_table: m._meta.pk.column for m in _all_models()}.items())
    if settings_dict["ENGINE"].endswith("sqlite3"):
        conn = sqlite3.connect(settings_dict["NAME"])
    else:
        conn = _pg_connect(settings_dict, dbname=settings_dict["NAME"])
    try:
        return {table: list(conn.execute(f'SELECT * FROM "{table}" ORDER BY "{pk}"')) for table, pk in tables}  # noqa: S608
    finally:
        conn.close()


def _all_models() -> list[type]:
    return [m for m in apps.get_models(include_auto_created=True) if m._meta.managed and not m._meta.proxy]


def _write_categories(stop: threading.Event, written: list[int]) -> None:
    """The app serving meanwhile: one committed insert after another, bounded in count and time."""
    deadline = time.monotonic() + WRITER_MAX_S
    try:
        while not stop.is_set() and len(written) < WRITER_MAX_ROWS and time.monotonic() < deadline:
            n = len(written)
            written.append(Category.objects.create(name=f"Concurrent {n}", slug=f"concurrent-{n}").pk)
    finally:
        connections.close_all()


@pytest.mark.slow
def test_a_backup_taken_under_writes_restores_every_row_into_a_fresh_database(fresh_target: dict, tmp_path) -> None:
    call_command("seed_demo", places=40, users=12, reviews=120, interactions=300, seed=5)
    stop, written = threading.Event(), []
    writer = threading.Thread(target=_write_categories, args=(stop, written))
    writer.start()
    try:
        while len(written) < 20 and writer.is_alive():  # the backup starts in the middle of the writes
            time.sleep(0.01)
        call_command("backup", "--output", str(tmp_path / "chowist.backup"))
    finally:
        stop.set()
        writer.join(timeout=WRITER_MAX_S + 5)
    backup = tmp_path / "chowist.backup"
    assert backup.stat().st_size > 0

    backup_restore(source=backup, alias=RESTORED)

    source, restored = _rows_by_table(connection.settings_dict), _rows_by_table(fresh_target)
    assert source.keys() == restored.keys()
    categories = Category._meta.db_table
    for table, rows in restored.items():
        if table == categories:
            # One moment in time: the restored categories are exactly the first ones the writer committed.
            assert rows == source[table][: len(rows)]
            concurrent = [row for row in rows if row[1].startswith("Concurrent ")]
            assert 20 <= len(concurrent) <= len(written)
        else:
            assert rows == source[table], f"{table}: {len(rows)} rows restored of {len(source[table])}"
    assert sum(map(len, restored.values())) > 500  # the seed really was there to compare
    if connection.vendor == "sqlite":
        with sqlite3.connect(fresh_target["NAME"]) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_database_that_holds_tables_unless_forced(tmp_path) -> None:
    Category.objects.create(name="Kept", slug="kept")
    backup = backup_create(output=tmp_path / "one.backup").path
    Category.objects.create(name="After the backup", slug="after")

    with pytest.raises(CommandError, match=r"not empty.*--force"):
        call_command("restore", str(backup))
    assert Category.objects.filter(slug="after").exists()  # untouched

    call_command("restore", str(backup), "--force")
    connections["default"].close()
    assert set(Category.objects.values_list("slug", flat=True)) == {"kept"}


@pytest.mark.django_db
def test_a_backup_never_overwrites_a_file(tmp_path) -> None:
    existing = tmp_path / "taken.backup"
    existing.write_bytes(b"precious")
    with pytest.raises(BackupError, match="already exists"):
        backup_create(output=existing)
    assert existing.read_bytes() == b"precious"


@pytest.mark.django_db
@pytest.mark.parametrize("content", [b"", b"not a backup at all", b"PK\x03\x04zip"])
def test_restore_refuses_what_is_not_a_backup_of_this_database(tmp_path, content: bytes) -> None:
    bogus = tmp_path / "bogus.backup"
    bogus.write_bytes(content)
    with pytest.raises(CommandError, match="is not a"):
        call_command("restore", str(bogus), "--force")
    with pytest.raises(CommandError, match="no such backup file"):
        call_command("restore", str(tmp_path / "missing.backup"))
