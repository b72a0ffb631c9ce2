"""Throwaway Redis and PostgreSQL servers for the tests: the fault matrix restarts them under load, and the replica
test streams from one, without touching the shared ones on 6379 and 5432, which other test runs and people's labs
use at the same time (and whose pg_hba.conf may not allow replication).

initdb's own pg_hba.conf with --auth=trust accepts replication connections from 127.0.0.1, and its defaults
(wal_level=replica, max_wal_senders=10) are what pg_basebackup and a streaming standby need.

Each lives in a directory of its own on a free port and is gone when its context ends. A missing binary (or, for
PostgreSQL, no user to run it as) is a skip that names what to install.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from experiments.lab.procs import Process, free_port, start, tcp_probe
from experiments.lab.replica import ReplicaError, postgres_bindir

REDIS_SERVER = "redis-server"
PG_CTL_TIMEOUT_S = 60
# PostgreSQL refuses to run as root: as root the cluster belongs to, and runs as, this user (as the replica does).
POSTGRES_OS_USER = "postgres"


@dataclass
class ThrowawayRedis:
    binary: str
    port: int
    directory: Path
    process: Process | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        # No persistence, so a restart loses everything it held (queue, schedule, drain flag, cache): the harshest
        # restart, what a Redis without RDB/AOF (a cache-only instance, a replaced pod) does.
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.process = start(
            argv, name="redis", log_path=self.directory / "redis.log", ready=[tcp_probe(self.port)], banner=True
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def restart(self, *, down_s: float) -> None:
        """Stop, stay down `down_s` (a restart that reloads or reschedules takes a moment), start again."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def held(self) -> dict[str, int]:
        """How many keys each database holds right now (what a restart without persistence throws away)."""
        import redis

        info = redis.Redis(port=self.port, socket_timeout=2).info("keyspace")
        return {name: int(stats["keys"]) for name, stats in info.items()}


@contextmanager
def throwaway_redis(directory: Path) -> Iterator[ThrowawayRedis]:
    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server): no throwaway Redis to restart")
    directory.mkdir(parents=True, exist_ok=True)
    server = ThrowawayRedis(binary=binary, port=free_port(), directory=directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class ThrowawayPostgres:
    bindir: Path
    base: Path
    port: int
    run_as: str | None
    max_connections: int = 60

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        options += f" -c max_connections={self.max_connections}"
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.base / "postgres.log")]
        command += ["-w", "-t", str(PG_CTL_TIMEOUT_S), "-o", options, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=PG_CTL_TIMEOUT_S + 10, **_as(self))
        assert result.returncode == 0, f"pg_ctl {' '.join(args)}: {result.stdout}{result.stderr}"

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: open sessions are terminated, in-flight transactions rolled back."""
        self.pg_ctl("restart", "-m", "fast")

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


def _as(server: ThrowawayPostgres) -> dict[str, object]:
    return {"user": server.run_as, "group": server.run_as, "extra_groups": []} if server.run_as else {}


@contextmanager
def throwaway_postgres(*, max_connections: int = 60) -> Iterator[ThrowawayPostgres]:
    """A fresh cluster; `max_connections` is set on its command line, as a primary's settings can be."""
    try:
        bindir = postgres_bindir()
    except ReplicaError as exc:
        pytest.skip(f"no throwaway PostgreSQL cluster: {exc}")
    if not (bindir / "initdb").exists():
        pytest.skip(f"no throwaway PostgreSQL cluster: {bindir / 'initdb'} is missing (apt-get install postgresql)")
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(POSTGRES_OS_USER)
        except KeyError:
            pytest.skip(f"no throwaway PostgreSQL cluster: running as root and there is no {POSTGRES_OS_USER!r} user")
        run_as = POSTGRES_OS_USER
    # Not under pytest's tmp_path: its parents are root's, mode 0700, where the postgres user cannot go. The unix
    # socket lives here too, so the path stays short (sockets are limited to 107 bytes).
    base = Path(tempfile.mkdtemp(prefix="chowist-pg-"))
    server = ThrowawayPostgres(
        bindir=bindir, base=base, port=free_port(), run_as=run_as, max_connections=max_connections
    )
    if run_as:
        shutil.chown(base, user=run_as, group=run_as)
    started = False
    try:
        initdb = [str(bindir / "initdb"), "-D", str(server.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        result = subprocess.run([*initdb, "--no-sync"], capture_output=True, text=True, timeout=120, **_as(server))
        assert result.returncode == 0, f"initdb: {result.stdout}{result.stderr}"
        server.pg_ctl("start")
        started = True
        yield server
    finally:
        if started:
            with suppress(AssertionError, subprocess.TimeoutExpired):
                server.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(base, ignore_errors=True)
