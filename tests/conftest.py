"""Real databases for the tests: SQLite in a temp file, MariaDB and PostgreSQL on this machine.

Server URLs come from ``ROWFERRY_TEST_MYSQL_URL`` and ``ROWFERRY_TEST_PG_URL``. Each test that asks
for ``db_url`` gets a database of its own, created for it and dropped afterwards. A server that is
down makes the test fail, never skip.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

MYSQL_URL = os.environ.get("ROWFERRY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
PG_URL = os.environ.get(
    "ROWFERRY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

DIALECTS = ["sqlite", "mariadb", "postgresql"]


def _server_url(kind: str) -> sa.URL:
    return sa.make_url(MYSQL_URL if kind == "mariadb" else PG_URL)


def require_driver(driver: str) -> None:
    """mysqlclient (``mysqldb``) is an optional extra that needs the MariaDB client headers to
    build: its tests skip where it is not installed, except under
    ROWFERRY_TEST_REQUIRE_MYSQLCLIENT=1 (CI), where they fail."""
    if driver == "mysqldb" and importlib.util.find_spec("MySQLdb") is None:
        if os.environ.get("ROWFERRY_TEST_REQUIRE_MYSQLCLIENT") == "1":
            pytest.fail("mysqlclient is not installed: pip install 'rowferry[mysqlclient]'")
        pytest.skip("mysqlclient is not installed (pip install 'rowferry[mysqlclient]')")


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


@pytest.fixture(params=DIALECTS)
def dialect_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(dialect_name: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind (the test runs once per kind)."""
    url = create_database(dialect_name, tmp_path)
    yield url
    drop_database(url)


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[object]:
    """Factory for extra databases: ``make_db("mariadb")`` gives a fresh URL, dropped after."""
    made: list[str] = []

    def make(kind: str) -> str:
        url = create_database(kind, tmp_path)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(db_url)
    yield eng
    eng.dispose()
