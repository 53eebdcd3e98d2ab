"""The three databases a fuzz run uses, opened with their drivers directly (no SQLAlchemy):
a SQLite file, and a database of its own on the MariaDB and the PostgreSQL server."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql

MYSQL = os.environ.get("ROWFERRY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
PG = os.environ.get("ROWFERRY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _parts(url: str) -> dict[str, Any]:
    rest = url.split("://", 1)[1]
    auth, _, place = rest.rpartition("@")
    user, _, password = auth.partition(":")
    hostport = place.split("/", 1)[0]
    host, _, port = hostport.partition(":")
    return {"user": user, "password": password, "host": host, "port": int(port)}


@dataclass
class Database:
    dialect: str
    url: str
    raw: Any  # the driver's connection, in autocommit

    def quote(self, name: str) -> str:
        return f"`{name}`" if self.dialect == "mariadb" else f'"{name}"'

    @property
    def mark(self) -> str:
        return "?" if self.dialect == "sqlite" else "%s"

    def execute(self, sql: str, params: Any = ()) -> None:
        cur = self.raw.cursor()
        cur.execute(sql, params)
        cur.close()

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        cur = self.raw.cursor()
        cur.execute(sql, params)
        rows = [tuple(r) for r in cur.fetchall()]
        cur.close()
        return rows

    def insert_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        cur = self.raw.cursor()
        cur.executemany(sql, rows)
        cur.close()


class Databases:
    """One database per dialect, created on open and dropped on close."""

    def __init__(self) -> None:
        self.name = "rf_fuzz_" + uuid.uuid4().hex[:10]
        self._dir = tempfile.TemporaryDirectory(prefix="rf_fuzz_")
        self.by_dialect: dict[str, Database] = {}

    def open(self) -> Databases:
        path = Path(self._dir.name) / "fuzz.sqlite"
        lite = sqlite3.connect(path, isolation_level=None)
        self.by_dialect["sqlite"] = Database("sqlite", f"sqlite:///{path}", lite)
        m = _parts(MYSQL)
        admin = pymysql.connect(**m, autocommit=True)
        admin.cursor().execute(f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4")
        admin.close()
        maria = pymysql.connect(**m, database=self.name, autocommit=True, charset="utf8mb4")
        maria.cursor().execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
        url = f"mysql+pymysql://{m['user']}@{m['host']}:{m['port']}/{self.name}"
        self.by_dialect["mariadb"] = Database("mariadb", url, maria)
        p = _parts(PG)
        with psycopg.connect(**p, dbname="postgres", autocommit=True) as admin_pg:
            admin_pg.execute(f"CREATE DATABASE {self.name}")
            # a zone other than UTC: instants must arrive as their UTC time, whatever it is
            admin_pg.execute(f"ALTER DATABASE {self.name} SET timezone TO 'Asia/Kolkata'")
        pg = psycopg.connect(**p, dbname=self.name, autocommit=True)
        url = f"postgresql+psycopg://{p['user']}@{p['host']}:{p['port']}/{self.name}"
        self.by_dialect["postgresql"] = Database("postgresql", url, pg)
        return self

    def close(self) -> None:
        for db in self.by_dialect.values():
            db.raw.close()
        m = _parts(MYSQL)
        admin = pymysql.connect(**m, autocommit=True)
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {self.name}")
        admin.close()
        with psycopg.connect(**_parts(PG), dbname="postgres", autocommit=True) as admin_pg:
            admin_pg.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self._dir.cleanup()

    def __enter__(self) -> Databases:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
