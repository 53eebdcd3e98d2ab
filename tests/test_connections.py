"""Which driver a URL gets, and the connection options rowferry adds."""

from __future__ import annotations

import datetime as dt
import importlib.util
from typing import Any

import pytest
import sqlalchemy as sa
from pymysql import converters
from pymysql.constants import FIELD_TYPE

from rowferry.dialects import connect as connections

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
    found = connections._connect_args(sa.make_url(url))
    found.pop("conv", None)  # PyMySQL's decoders: tested below
    assert found == args


def test_a_loopback_connection_to_mariadb_works_without_tls() -> None:
    from harness.databases import MYSQL_URL

    engine = connections.create_engine(MYSQL_URL)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        cipher = conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Ssl_cipher'").one()[1]
    engine.dispose()
    assert cipher == ""


def test_pymysql_decodes_dates_and_times_exactly_as_its_own_converters_do(make_db: Any) -> None:
    """rowferry's faster decoders give the values PyMySQL's own give, zero dates included."""
    url = make_db("mariadb")
    values = [
        "'2024-02-29 23:59:59', '2024-02-29 23:59:59.5', '2024-02-29 23:59:59.123456', "
        "'2024-02-29', '2024-02-29 01:02:03.000100'",
        "'0000-00-00 00:00:00', '0000-00-00 00:00:00.0', '1000-01-01 00:00:00.000001', "
        "'0000-00-00', '1970-01-01 00:00:01'",
        "NULL, NULL, NULL, NULL, NULL",
    ]
    plain = sa.create_engine(url)
    with plain.begin() as conn:
        conn.exec_driver_sql("SET SESSION sql_mode = ''")
        conn.exec_driver_sql(
            "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, a DATETIME, b DATETIME(1), "
            "c DATETIME(6), d DATE, e TIMESTAMP(6) NULL)"
        )
        for row in values:
            conn.exec_driver_sql(f"INSERT INTO t (a, b, c, d, e) VALUES ({row})")
    query = "SELECT a, b, c, d, e FROM t ORDER BY id"
    with plain.connect() as conn:
        expected = [tuple(r) for r in conn.exec_driver_sql(query)]
    plain.dispose()
    fast = connections.create_engine(url)
    with fast.connect() as conn:
        assert (
            conn.connection.dbapi_connection.decoders[FIELD_TYPE.DATETIME]
            is not converters.convert_datetime
        )
        found = [tuple(r) for r in conn.exec_driver_sql(query)]
    fast.dispose()
    assert found == expected
    assert [type(v) for v in found[0]] == [dt.datetime] * 3 + [dt.date, dt.datetime]
    assert found[1][0] == "0000-00-00 00:00:00" and found[1][3] == "0000-00-00"
