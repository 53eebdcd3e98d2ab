"""Which driver a URL gets, and the connection options rowferry adds."""

from __future__ import annotations

import importlib.util

import pytest
import sqlalchemy as sa

from rowferry import connections

HAS_MYSQLCLIENT = importlib.util.find_spec("MySQLdb") is not None


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("mysql://u@db/shop", "mysql+pymysql"),
        ("mariadb://u@db/shop", "mariadb+pymysql"),
        ("mysql+pymysql://u@db/shop", "mysql+pymysql"),
        ("mysql+mysqldb://u@db/shop", "mysql+mysqldb" if HAS_MYSQLCLIENT else "mysql+pymysql"),
        ("mysql+mysqlclient://u@db/shop", "mysql+mysqldb" if HAS_MYSQLCLIENT else "mysql+pymysql"),
        ("postgresql://u@db/shop", "postgresql+psycopg"),
    ],
)
def test_each_url_gets_its_driver(url: str, driver: str) -> None:
    parsed = connections.parse_url(url)
    assert parsed.drivername == driver
    if driver.startswith(("mysql", "mariadb")):
        assert parsed.query["charset"] == "utf8mb4"


@pytest.mark.parametrize(
    ("url", "args"),
    [
        ("mysql+pymysql://root@127.0.0.1/test", {"ssl_disabled": True}),
        ("mysql+pymysql://root@localhost/test", {"ssl_disabled": True}),
        ("mysql+pymysql://root@/test?unix_socket=/run/mysqld/mysqld.sock", {"ssl_disabled": True}),
        ("mysql+pymysql://root@db.example.com/test", {}),
        ("mysql+pymysql://root@127.0.0.1/test?ssl_ca=/etc/ca.pem", {}),
        ("postgresql+psycopg://root@127.0.0.1/test", {}),
    ],
)
def test_tls_is_not_negotiated_over_loopback_unless_asked_for(
    url: str, args: dict[str, object]
) -> None:
    assert connections._connect_args(sa.make_url(url)) == args


def test_a_loopback_connection_to_mariadb_works_without_tls() -> None:
    from .conftest import MYSQL_URL

    engine = connections.create_engine(MYSQL_URL)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        cipher = conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Ssl_cipher'").one()[1]
    engine.dispose()
    assert cipher == ""
