"""Backups of the app's database: one file per backup, taken while the app serves, restored only on purpose.

SQLite: the online backup API copies every page in one step under a read transaction. In WAL mode that
neither blocks the app's writers nor sees half of one, so the copy is the database as of one commit.
PostgreSQL: `pg_dump --format=custom` (one repeatable-read snapshot) and `pg_restore`.

A restore refuses a target that already holds tables unless forced: restoring over live data is the one
mistake a backup tool must not make easy.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from psycopg import sql

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
# Databases an engineer connects to when the target does not exist yet.
PG_MAINTENANCE_DB = "postgres"


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    vendor: str
    size_bytes: int


def backup_default_path(*, vendor: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "sqlite3" if vendor == "sqlite" else "dump"
    return Path(settings.VAR_DIR) / "backups" / f"chowist-{vendor}-{stamp}.{suffix}"


def backup_create(*, output: Path | None = None, alias: str = "default") -> BackupResult:
    """Write a consistent copy of database `alias` to `output` (default: $VAR_DIR/backups/...)."""
    database = connections[alias].settings_dict
    vendor = connections[alias].vendor
    path = output or backup_default_path(vendor=vendor)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise BackupError(f"{path} already exists: a backup never overwrites another")
    partial = path.with_name(path.name + ".partial")
    try:
        if vendor == "sqlite":
            _sqlite_copy(source=Path(database["NAME"]), target=partial)
        elif vendor == "postgresql":
            _run(["pg_dump", "--format=custom", "--no-owner", f"--file={partial}"], database)
        else:
            raise BackupError(f"no backup method for {vendor}")
        # Renamed only when complete, so a file named like a backup is never a truncated one.
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path=path, vendor=vendor, size_bytes=path.stat().st_size)


def backup_restore(*, source: Path, force: bool = False, alias: str = "default") -> list[str]:
    """Replace database `alias` with the backup in `source`; returns the tables the target held before.

    Refuses a target that holds any table unless `force`. A PostgreSQL target that does not exist is created.
    """
    if not source.is_file():
        raise BackupError(f"{source}: no such backup file")
    database = connections[alias].settings_dict
    vendor = connections[alias].vendor
    _check_format(source=source, vendor=vendor)
    connections[alias].close()
    if vendor == "sqlite":
        target = Path(database["NAME"])
        existing = _sqlite_tables(target)
        _refuse_unless_forced(existing=existing, target=str(target), force=force)
        _sqlite_copy(source=source, target=target)
    else:
        _pg_create_if_missing(database)
        existing = _pg_tables(database)
        _refuse_unless_forced(existing=existing, target=database["NAME"], force=force)
        if existing:
            _pg_reset_schema(database)
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--dbname",
                database["NAME"],
                str(source),
            ],
            database,
        )
    return existing


def _refuse_unless_forced(*, existing: list[str], target: str, force: bool) -> None:
    if existing and not force:
        shown = ", ".join(existing[:5]) + (", ..." if len(existing) > 5 else "")
        raise BackupError(
            f"database {target} is not empty ({len(existing)} tables: {shown}); "
            "restoring would replace it: pass --force (make restore ... FORCE=1) if that is what you want"
        )


def _check_format(*, source: Path, vendor: str) -> None:
    with source.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    expected = SQLITE_MAGIC if vendor == "sqlite" else PG_DUMP_MAGIC
    if not head.startswith(expected):
        kind = "SQLite database" if vendor == "sqlite" else "pg_dump custom-format archive"
        raise BackupError(f"{source} is not a {kind}, which is what a {vendor} database restores from")


# --- SQLite -----------------------------------------------------------------------------------------
def _sqlite_copy(*, source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)  # pages=-1: all in one step, one snapshot
    finally:
        dst.close()
        src.close()


def _sqlite_tables(path: Path) -> list[str]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return sorted(name for (name,) in rows)
    finally:
        conn.close()


# --- PostgreSQL -------------------------------------------------------------------------------------
def _pg_env(database: dict[str, Any]) -> dict[str, str]:
    """libpq's environment for the pg_* tools: the password never appears on a command line."""
    env = dict(os.environ)
    env.update(
        {
            "PGHOST": str(database.get("HOST") or "127.0.0.1"),
            "PGPORT": str(database.get("PORT") or 5432),
            "PGUSER": str(database.get("USER") or "postgres"),
            "PGDATABASE": str(database["NAME"]),
        }
    )
    if database.get("PASSWORD"):
        env["PGPASSWORD"] = str(database["PASSWORD"])
    return env


def _run(command: list[str], database: dict[str, Any]) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (apt-get install postgresql-client)")
    result = subprocess.run(command, env=_pg_env(database), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def _pg_connect(database: dict[str, Any], *, dbname: str | None = None) -> psycopg.Connection:
    env = _pg_env(database)
    return psycopg.connect(
        host=env["PGHOST"],
        port=env["PGPORT"],
        user=env["PGUSER"],
        password=env.get("PGPASSWORD"),
        dbname=dbname or env["PGDATABASE"],
        autocommit=True,
        connect_timeout=10,
    )


def _pg_create_if_missing(database: dict[str, Any]) -> None:
    with _pg_connect(database, dbname=PG_MAINTENANCE_DB) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database["NAME"])))


def _pg_tables(database: dict[str, Any]) -> list[str]:
    with _pg_connect(database) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return sorted(name for (name,) in rows)


def _pg_reset_schema(database: dict[str, Any]) -> None:
    """A forced restore replaces the whole schema, so no table the backup lacks survives beside it."""
    with _pg_connect(database) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
