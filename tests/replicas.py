"""Replicated servers that tests start themselves: a MariaDB primary with a replica, and a
PostgreSQL primary with a streaming standby, each on its own port and data directory under a
temporary folder, stopped and removed afterwards.

The servers are the machine's own binaries (``mariadbd``, PostgreSQL's ``initdb``/``pg_ctl``/
``pg_basebackup``), configured on the command line only (``--no-defaults``), so they share
nothing with the servers the rest of the suite uses. PostgreSQL refuses to run as root: its
clusters belong to the ``postgres`` user, under a folder that user owns.

Lag is made for real: :meth:`MariaDBPair.stop_applying` stops the replica's SQL thread,
:meth:`PostgresPair.stop_applying` pauses the standby's WAL replay; writes to the primary then
wait on the replica until ``resume_applying``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pymysql

PG_BIN = Path(os.environ.get("ROWFERRY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
MARIADBD = os.environ.get("ROWFERRY_TEST_MARIADBD", "/usr/sbin/mariadbd")
#: how long a server may take to accept connections (a loaded machine included)
START_SECONDS = 60.0


class ReplicaError(Exception):
    """A server of the pair did not start or replicate."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: object, what: str, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise ReplicaError(f"{what} within {seconds:.0f} s (last error: {last})")


@dataclass
class MariaDBPair:
    primary_port: int
    replica_port: int

    @property
    def primary_url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.primary_port}/rowferry"

    @property
    def replica_url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.replica_port}/rowferry"

    def connect(self, port: int) -> pymysql.connections.Connection:
        return pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)

    def on_replica(self, sql: str) -> list[tuple[object, ...]]:
        with self.connect(self.replica_port) as conn, conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def stop_applying(self) -> None:
        self.on_replica("STOP SLAVE SQL_THREAD")

    def resume_applying(self) -> None:
        self.on_replica("START SLAVE SQL_THREAD")


def _mariadbd(datadir: Path, port: int, server_id: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            MARIADBD,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            f"--socket={datadir}.sock",
            f"--pid-file={datadir}.pid",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--server-id={server_id}",
            "--innodb-buffer-pool-size=32M",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(f"{datadir}.log", "wb"),
    )


@contextmanager
def mariadb_pair() -> Iterator[MariaDBPair]:
    """A MariaDB primary (binary log on) and a replica following it, with a database
    ``rowferry`` created on the primary (and so on the replica)."""
    folder = Path(tempfile.mkdtemp(prefix="rf-mariadb-"))
    servers: list[subprocess.Popen[bytes]] = []
    try:
        first = folder / "primary"
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={first}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        second = folder / "replica"
        shutil.copytree(first, second)
        pair = MariaDBPair(free_port(), free_port())
        servers.append(_mariadbd(first, pair.primary_port, 1, f"--log-bin={first}/binlog"))
        servers.append(_mariadbd(second, pair.replica_port, 2, "--read-only"))
        for port in (pair.primary_port, pair.replica_port):
            _wait(lambda port=port: pair.connect(port).close() or True, f"MariaDB on {port}")
        pair.on_replica(
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={pair.primary_port}, "
            "MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos"
        )
        pair.on_replica("START SLAVE")
        with pair.connect(pair.primary_port) as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE rowferry")
        _wait(
            lambda: pair.on_replica("SHOW DATABASES LIKE 'rowferry'"),
            "the replica applying the primary's first statement",
        )
        yield pair
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class PostgresPair:
    folder: Path
    primary_port: int
    standby_port: int

    @property
    def primary_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.primary_port}/postgres"

    @property
    def standby_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.standby_port}/postgres"

    def connect(self, port: int) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
        )

    def on_standby(self, sql: str) -> list[tuple[object, ...]]:
        with self.connect(self.standby_port) as conn:
            return list(conn.execute(sql).fetchall())

    def stop_applying(self) -> None:
        self.on_standby("SELECT pg_wal_replay_pause()")

    def resume_applying(self) -> None:
        self.on_standby("SELECT pg_wal_replay_resume()")


def _as_postgres(*command: str | Path) -> None:
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, command)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ReplicaError(f"{command[0]} failed: {done.stderr.strip() or done.stdout.strip()}")


def _pg_start(datadir: Path, port: int, folder: Path) -> None:
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB -c fsync=off"
    )
    _as_postgres(
        PG_BIN / "pg_ctl", "-D", datadir, "-o", options, "-l", f"{datadir}.log", "-w", "start"
    )


@contextmanager
def postgres_pair() -> Iterator[PostgresPair]:
    """A PostgreSQL primary and a standby streaming from it (``pg_basebackup -R``)."""
    folder = Path(tempfile.mkdtemp(prefix="rf-postgres-"))
    owner = pwd.getpwnam("postgres")
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    started: list[Path] = []
    try:
        primary, standby = folder / "primary", folder / "standby"
        _as_postgres(PG_BIN / "initdb", "-D", primary, "-A", "trust", "-U", "postgres")
        pair = PostgresPair(folder, free_port(), free_port())
        _pg_start(primary, pair.primary_port, folder)
        started.append(primary)
        _as_postgres(
            PG_BIN / "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(pair.primary_port),
            "-U",
            "postgres",
            "-D",
            standby,
            "-R",
            "-X",
            "stream",
        )
        _pg_start(standby, pair.standby_port, folder)
        started.append(standby)
        _wait(lambda: pair.on_standby("SELECT pg_is_in_recovery()")[0][0], "the standby")
        yield pair
    finally:
        for datadir in reversed(started):
            with suppress(ReplicaError):
                _as_postgres(PG_BIN / "pg_ctl", "-D", datadir, "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
