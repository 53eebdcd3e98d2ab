"""Real databases for the tests: SQLite in a temp file, MariaDB and PostgreSQL on this machine.

Server URLs come from ``ROWFERRY_TEST_MYSQL_URL`` and ``ROWFERRY_TEST_PG_URL``. Each test that asks
for ``db_url`` gets a database of its own, created for it and dropped afterwards. A server that is
down makes the test fail, never skip.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness.databases import create_database, drop_database

DIALECTS = ["sqlite", "mariadb", "postgresql"]


def require_driver(driver: str) -> None:
    """mysqlclient (``mysqldb``) is an optional extra that needs the MariaDB client headers to
    build: its tests skip where it is not installed, except under
    ROWFERRY_TEST_REQUIRE_MYSQLCLIENT=1 (CI), where they fail."""
    if driver == "mysqldb" and importlib.util.find_spec("MySQLdb") is None:
        if os.environ.get("ROWFERRY_TEST_REQUIRE_MYSQLCLIENT") == "1":
            pytest.fail("mysqlclient is not installed: pip install 'rowferry[mysqlclient]'")
        pytest.skip("mysqlclient is not installed (pip install 'rowferry[mysqlclient]')")


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
