"""A PostgreSQL streaming read replica of the primary: `pg_basebackup`, then a hot-standby `postgres` of its own.

The replica is a second cluster (its own data directory and port) that streams WAL from the primary; the primary
is never restarted, and only needs a pg_hba.conf line allowing replication (`replica_check_primary` names it).
PostgreSQL refuses to run as root, so when we are root the data directory belongs to, and the server runs as,
`ReplicaSpec.run_as` (`postgres`), as pgbouncer does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

CONNECT_TIMEOUT_S = 5
BASEBACKUP_TIMEOUT_S = 300
# Lag as the replica sees it: 0 when it has replayed everything it received, else the age of the last replayed
# transaction (so an idle primary does not look like a lagging replica).
LAG_SQL = (
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


class ReplicaError(RuntimeError):
    """The replica cannot be created or started; the message says what to do."""


@dataclass(frozen=True)
class ReplicaSpec:
    primary_url: str  # postgres://user@host:port/db of the primary (the database part is ignored by basebackup)
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    run_as: str | None = None  # the OS user owning the data directory and running postgres (needed as root)

    @property
    def primary_host(self) -> str:
        return urlparse(self.primary_url).hostname or "127.0.0.1"

    @property
    def primary_port(self) -> int:
        return urlparse(self.primary_url).port or 5432

    @property
    def primary_user(self) -> str:
        return urlparse(self.primary_url).username or "postgres"

    @property
    def primary_conninfo(self) -> str:
        """libpq conninfo for the primary's maintenance database (the checks and settings reads use it)."""
        return f"host={self.primary_host} port={self.primary_port} user={self.primary_user} dbname=postgres"

    def url(self, database_url: str | None = None) -> str:
        """`database_url` (default: the primary's) pointed at the replica's host and port."""
        parsed = urlparse(database_url or self.primary_url)
        auth = parsed.netloc.rsplit("@", 1)[0] + "@" if "@" in parsed.netloc else ""
        return urlunparse(parsed._replace(netloc=f"{auth}{self.host}:{self.port}"))


def postgres_bindir() -> Path:
    """Debian keeps `postgres` and `pg_ctl` out of PATH: ask pg_config, then the usual place."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "postgres").exists():
            return Path(out)
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "postgres").exists():
            return candidate
    raise ReplicaError("the postgres server binary is not installed (apt-get install postgresql)")


def replica_check_primary(spec: ReplicaSpec) -> None:
    """The primary must accept replication connections from us; say which pg_hba.conf line is missing if not."""
    import psycopg

    conninfo = spec.primary_conninfo
    try:
        with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            wal_level = conn.execute("SHOW wal_level").fetchone()[0]
    except psycopg.OperationalError as exc:
        raise ReplicaError(f"the primary is not reachable at {spec.primary_host}:{spec.primary_port}: {exc}") from exc
    if wal_level not in {"replica", "logical"}:
        raise ReplicaError(f"the primary runs with wal_level={wal_level}; a streaming replica needs 'replica'")
    try:
        psycopg.connect(f"{conninfo} replication=true", connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.OperationalError as exc:
        raise ReplicaError(
            f"the primary refuses replication connections ({str(exc).strip()}). Add to its pg_hba.conf "
            f"'host replication {spec.primary_user} {spec.host}/32 trust' and run SELECT pg_reload_conf() "
            "(a reload, not a restart)"
        ) from exc


def replica_create(spec: ReplicaSpec, *, log: Path | None = None) -> bool:
    """Clone the primary into `spec.data_dir` unless a standby is already there. True when it was created."""
    if (spec.data_dir / "standby.signal").exists() and (spec.data_dir / "PG_VERSION").exists():
        _write_config(spec)  # the port may have changed since
        return False
    replica_check_primary(spec)
    if spec.data_dir.exists():
        shutil.rmtree(spec.data_dir)  # a half-made clone from an interrupted run
    spec.data_dir.mkdir(parents=True, mode=0o700)
    _own(spec, spec.data_dir)
    command = [
        str(postgres_bindir() / "pg_basebackup"),
        f"--host={spec.primary_host}",
        f"--port={spec.primary_port}",
        f"--username={spec.primary_user}",
        f"--pgdata={spec.data_dir}",
        "--wal-method=stream",
        "--write-recovery-conf",  # standby.signal + primary_conninfo
        "--checkpoint=fast",
        "--no-password",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=BASEBACKUP_TIMEOUT_S, check=False, **_as_user(spec)
    )
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        shutil.rmtree(spec.data_dir, ignore_errors=True)
        raise ReplicaError(f"pg_basebackup failed ({result.returncode}): {result.stderr.strip()[-1500:]}")
    _write_config(spec)
    return True


def replica_argv(spec: ReplicaSpec) -> list[str]:
    """The foreground server command (the caller owns the process: pid file, process group, logs)."""
    return [str(postgres_bindir() / "postgres"), "-D", str(spec.data_dir)]


def replica_process_user(spec: ReplicaSpec) -> str | None:
    return spec.run_as if os.geteuid() == 0 else None


def replica_lag_seconds(url: str) -> float:
    import psycopg

    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        return float(conn.execute(LAG_SQL).fetchone()[0])


def replica_wait_caught_up(*, primary_url: str, replica_url: str, timeout_s: float) -> None:
    """Block until the replica has replayed everything the primary had written when this was called."""
    import psycopg

    with psycopg.connect(primary_url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(replica_url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
        while True:
            behind = conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", [target]).fetchone()
            if behind[0] is not None and behind[0] <= 0:
                return
            if time.monotonic() > deadline:
                raise ReplicaError(f"the replica is still {behind[0]} bytes behind after {timeout_s:.0f} s")
            time.sleep(0.05)


# A hot standby refuses to start ("recovery aborted because of insufficient parameter settings") when one of these
# is lower than on its primary, and a primary's may come from its command line, not the postgresql.conf copied.
STANDBY_MUST_MATCH = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def _primary_settings(spec: ReplicaSpec) -> dict[str, str]:
    import psycopg

    with psycopg.connect(spec.primary_conninfo, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        rows = conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(STANDBY_MUST_MATCH)])
        return dict(rows.fetchall())


def _write_config(spec: ReplicaSpec) -> None:
    """Debian keeps the primary's postgresql.conf and pg_hba.conf in /etc: the clone gets its own, with the
    primary's values of the settings a standby must not have lower."""
    matched = "".join(f"{name} = {value}\n" for name, value in sorted(_primary_settings(spec).items()))
    run_dir = spec.data_dir / "run"
    run_dir.mkdir(exist_ok=True)
    _own(spec, run_dir)
    files = {
        "postgresql.conf": (
            f"listen_addresses = '{spec.host}'\n"
            f"port = {spec.port}\n"
            f"unix_socket_directories = '{run_dir}'\n"
            "hot_standby = on\n"
            # Long replica reads are not cancelled by the primary's vacuum; the primary keeps the rows they need.
            "hot_standby_feedback = on\n"
            f"{matched}"
            "shared_buffers = 64MB\n"
            "logging_collector = off\n"
            "log_line_prefix = '%m [%p] '\n"
        ),
        "pg_hba.conf": "local all all trust\nhost all all 127.0.0.1/32 trust\n",
    }
    for name, text in files.items():
        path = spec.data_dir / name
        path.write_text(text)
        _own(spec, path)


def _own(spec: ReplicaSpec, path: Path) -> None:
    user = replica_process_user(spec)
    if user:
        shutil.chown(path, user=user, group=user)


def _as_user(spec: ReplicaSpec) -> dict[str, object]:
    user = replica_process_user(spec)
    return {"user": user, "group": user, "extra_groups": []} if user else {}
