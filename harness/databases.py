"""Scratch databases: SQLite in a temp file, MariaDB and PostgreSQL on this machine.

Server URLs come from ``ROWFERRY_TEST_MYSQL_URL`` and ``ROWFERRY_TEST_PG_URL``. A server that
is down fails the caller (``pytest.fail``), never skips it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

MYSQL_URL = os.environ.get("ROWFERRY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
PG_URL = os.environ.get(
    "ROWFERRY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _server_url(kind: str) -> sa.URL:
    return sa.make_url(MYSQL_URL if kind == "mariadb" else PG_URL)


def create_database(kind: str, tmp_path: Path) -> str:
    """Create an empty database of this kind and return its URL as a string."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / ('rf_' + uuid.uuid4().hex[:8] + '.sqlite')}"
    name = "rf_test_" + uuid.uuid4().hex[:10]
    server = _server_url(kind)
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"{kind} server is not reachable at {server!r}: {exc}")
    finally:
        engine.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return
    kind = "mariadb" if parsed.get_backend_name() == "mysql" else "postgresql"
    engine = sa.create_engine(_server_url(kind), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if kind == "postgresql":
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {parsed.database} WITH (FORCE)")
        else:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {parsed.database}")
    engine.dispose()
