"""rowferry's row reading on PyMySQL gives what PyMySQL's own gives: the same values of every
type, the same errors, the same connection state afterwards."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
from pymysql.connections import MySQLResult

from harness.databases import create_database, drop_database
from rowferry.dialects import connect as connections
from rowferry.drivers import pymysql_rows
from rowferry.drivers.mysql_decoders import conversions

TABLE = """CREATE TABLE t (
    id INT PRIMARY KEY,
    i BIGINT, u BIGINT UNSIGNED, s SMALLINT, tiny TINYINT, b BIT(10), yr YEAR,
    d DECIMAL(30, 10), f FLOAT, g DOUBLE,
    day DATE, moment DATETIME(6), stamp TIMESTAMP(3) NULL, span TIME(6),
    name VARCHAR(300), body LONGTEXT, raw LONGBLOB, fixed CHAR(4), bin VARBINARY(20),
    doc JSON, kind ENUM('a', 'b'), tags SET('x', 'y', 'z')
) CHARACTER SET utf8mb4"""

#: lengths around each length-prefix size: 1 byte up to 250, 3 bytes up to 65,535, 4 up to
#: 16,777,215 (an 8-byte prefix needs a value of 16 MB, see the test of long rows)
LENGTHS = [0, 1, 250, 251, 252, 65_535, 65_536, 70_000]


def _rows() -> list[dict[str, Any]]:
    full = {
        "i": -(2**63),
        "u": 2**64 - 1,
        "s": -32768,
        "tiny": 127,
        "b": b"\x03\xff",
        "yr": 2155,
        "d": Decimal("-12345678901234567890.0123456789"),
        "f": 1.5,
        "g": 2.2250738585072014e-308,
        "day": dt.date(1000, 1, 1),
        "moment": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        "stamp": dt.datetime(2038, 1, 19, 3, 14, 7, 999000),
        "span": dt.timedelta(hours=-838, minutes=-59, seconds=-59),
        "name": "王小明 / Zoë 🚚 " * 10,
        "body": "O'Brien \\ \x00 \n",
        "raw": bytes(range(256)),
        "fixed": "ab",
        "bin": b"\x00\xfb\xfc\xfd\xfe\xff",
        "doc": '{"a": [1, 2.50, null, "é"]}',
        "kind": "b",
        "tags": "x,z",
    }
    rows = [{"id": 1, **full}, {"id": 2, **{k: None for k in full}}]
    rows += [
        {
            "id": 10 + n,
            **{k: None for k in full},
            "body": "é" * (length // 2),
            "raw": b"\xfe" * length,
        }
        for n, length in enumerate(LENGTHS)
    ]
    return rows


@pytest.fixture
def mariadb_url(tmp_path: Path) -> Iterator[str]:
    url = create_database("mariadb", tmp_path)
    yield url
    drop_database(url)


def _connect(cls: type[Any], url: str, **extra: Any) -> Any:
    parsed = sa.make_url(url)
    return cls(
        host=parsed.host,
        port=parsed.port or 3306,
        user=parsed.username,
        password=parsed.password or "",
        database=parsed.database,
        charset="utf8mb4",
        conv=conversions(),
        **extra,
    )


def _fetch(cls: type[Any], url: str, sql: str) -> tuple[Any, Any, Any]:
    conn = _connect(cls, url)
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall(), cursor.description, cursor.rowcount
    finally:
        conn.close()


def _load(url: str, rows: list[dict[str, Any]]) -> None:
    conn = _connect(pymysql.connections.Connection, url)
    try:
        cursor = conn.cursor()
        cursor.execute(TABLE)
        columns = list(rows[0])
        names = ", ".join(columns)
        marks = ", ".join(f"%({c})s" for c in columns)
        cursor.executemany(f"INSERT INTO t ({names}) VALUES ({marks})", rows)
        conn.commit()
    finally:
        conn.close()


def test_rowferry_connects_to_mysql_with_its_row_reader(mariadb_url: str) -> None:
    engine = connections.create_engine(mariadb_url)
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert isinstance(raw, pymysql_rows.Connection)
            assert conn.exec_driver_sql("SELECT 1, NULL, 'x'").all() == [(1, None, "x")]
    finally:
        engine.dispose()


def test_every_type_and_length_reads_as_pymysql_reads_it(mariadb_url: str) -> None:
    _load(mariadb_url, _rows())
    sql = "SELECT * FROM t ORDER BY id"
    ours = _fetch(pymysql_rows.Connection, mariadb_url, sql)
    theirs = _fetch(pymysql.connections.Connection, mariadb_url, sql)
    assert ours == theirs
    assert [tuple(map(type, row)) for row in ours[0]] == [
        tuple(map(type, row)) for row in theirs[0]
    ]
    assert len(ours[0]) == 2 + len(LENGTHS)
    assert [len(row[-6]) for row in ours[0][2:]] == LENGTHS  # raw: the long values arrived whole


def test_empty_results_and_statements_without_rows(mariadb_url: str) -> None:
    _load(mariadb_url, _rows()[:2])
    for sql in ("SELECT * FROM t WHERE id < 0", "UPDATE t SET tiny = 1", "SELECT 1 FROM DUAL"):
        assert _fetch(pymysql_rows.Connection, mariadb_url, sql) == _fetch(
            pymysql.connections.Connection, mariadb_url, sql
        )


def test_an_error_after_some_rows_is_raised_and_the_connection_goes_on(mariadb_url: str) -> None:
    """The server sends two rows, then an error packet (the subquery's third row has two)."""
    conn = _connect(pymysql_rows.Connection, mariadb_url)
    try:
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE a (x INT)")
        cursor.execute("CREATE TABLE b (y INT)")
        cursor.execute("INSERT INTO a VALUES (1), (2), (3)")
        cursor.execute("INSERT INTO b VALUES (1), (2)")
        with pytest.raises(pymysql.err.OperationalError) as raised:
            cursor.execute("SELECT x, (SELECT y FROM b WHERE y = x OR x = 3) FROM a ORDER BY x")
        assert raised.value.args[0] == 1242  # Subquery returns more than 1 row
        cursor.execute("SELECT COUNT(*) FROM a")
        assert cursor.fetchall() == ((3,),)
    finally:
        conn.close()


def _killed_mid_result(
    monkeypatch: pytest.MonkeyPatch, cls: type[Any], url: str, what: str
) -> tuple[Any, int, bool]:
    """Read two million generated rows; once the first row is parsed, another connection
    KILLs this one's QUERY or CONNECTION. The error, the rows parsed before it, and whether
    the connection is still open."""
    parsed = [0]
    first_row = threading.Event()
    if cls is pymysql_rows.Connection:  # its loop parses each row's bytes with _parse_row
        parse_row = pymysql_rows._Result._parse_row

        def counting_row(data: bytes, pos: int, columns: Any) -> Any:
            parsed[0] += 1
            first_row.set()
            return parse_row(data, pos, columns)

        monkeypatch.setattr(pymysql_rows._Result, "_parse_row", staticmethod(counting_row))
    else:
        parse = MySQLResult._read_row_from_packet

        def counting(self: Any, packet: Any) -> Any:
            parsed[0] += 1
            first_row.set()
            return parse(self, packet)

        monkeypatch.setattr(MySQLResult, "_read_row_from_packet", counting)
    conn = _connect(cls, url)
    admin = _connect(pymysql.connections.Connection, url)
    cursor = conn.cursor()
    cursor.execute("SELECT CONNECTION_ID()")
    (own_id,) = cursor.fetchone()
    parsed[0] = 0
    first_row.clear()

    def kill() -> None:
        if first_row.wait(30):
            admin.cursor().execute(f"KILL {what} {int(own_id)}")

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        with pytest.raises(pymysql.err.MySQLError) as raised:
            cursor.execute("SELECT seq, REPEAT('x', 20) FROM seq_1_to_2000000")
        return raised.value, parsed[0], conn.open
    finally:
        killer.join()
        admin.close()
        conn.close()


@pytest.mark.parametrize("what", ["QUERY", "CONNECTION"])
def test_a_result_killed_midway_fails_as_with_pymysql(
    monkeypatch: pytest.MonkeyPatch, mariadb_url: str, what: str
) -> None:
    """KILL QUERY puts an error packet among the rows; KILL CONNECTION closes the socket. Both
    readers raise the same error, after having read some rows, and leave the connection in the
    same state."""
    ours = _killed_mid_result(monkeypatch, pymysql_rows.Connection, mariadb_url, what)
    theirs = _killed_mid_result(monkeypatch, pymysql.connections.Connection, mariadb_url, what)
    assert 0 < ours[1] < 2_000_000 and 0 < theirs[1] < 2_000_000
    assert (type(ours[0]), ours[0].args[0], ours[2]) == (
        type(theirs[0]),
        theirs[0].args[0],
        theirs[2],
    )


@pytest.fixture
def big_packets(mariadb_url: str) -> Iterator[None]:
    """Rows of 16 MB and more need a larger max_allowed_packet on the server (for new
    connections); the server's own value is put back afterwards."""
    admin = _connect(pymysql.connections.Connection, mariadb_url)
    cursor = admin.cursor()
    cursor.execute("SELECT @@GLOBAL.max_allowed_packet")
    (before,) = cursor.fetchone()
    cursor.execute("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024")
    try:
        yield
    finally:
        cursor.execute(f"SET GLOBAL max_allowed_packet = {int(before)}")
        admin.close()


@pytest.mark.usefixtures("big_packets")
def test_rows_longer_than_one_protocol_packet(mariadb_url: str) -> None:
    """A row of 16 MB or more is split by the protocol into several packets, and a value that
    long has an 8-byte length prefix. The first row's payload is exactly one full packet
    (16,777,215 bytes: 11 bytes of lengths, ``0`` and ``tail`` around the value), so an empty
    packet follows it."""
    sizes = [2**24 - 1 - 11, 2**24 + 10, 20_000_000]
    sql = " UNION ALL ".join(
        f"SELECT {n} AS n, REPEAT('é', {size // 2}) AS v, 'tail' AS t"
        for n, size in enumerate(sizes)
    )
    ours = _fetch(pymysql_rows.Connection, mariadb_url, sql + " ORDER BY n")
    theirs = _fetch(pymysql.connections.Connection, mariadb_url, sql + " ORDER BY n")
    assert [len(row[1]) for row in ours[0]] == [size // 2 for size in sizes]
    assert [row[2] for row in ours[0]] == ["tail"] * 3
    assert ours == theirs


def test_other_pymysql_versions_get_pymysqls_own_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert pymysql_rows.connection_class() is pymysql_rows.Connection  # the installed version
    monkeypatch.setattr(pymysql, "VERSION", (9, 0, 0, "final", 0))
    assert pymysql_rows.connection_class() is pymysql.connections.Connection


def test_uuid_text_and_unicode_round_trip_through_rowferry(mariadb_url: str) -> None:
    """Through rowferry's engine (its decoders, utf8mb4), text values come back unchanged."""
    values = [str(uuid.uuid4()), "", "ß" * 300, "🚚" * 70_000]
    engine = connections.create_engine(mariadb_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE v (id INT PRIMARY KEY, s LONGTEXT)")
            conn.execute(
                sa.text("INSERT INTO v VALUES (:id, :s)"),
                [{"id": i, "s": s} for i, s in enumerate(values)],
            )
            got = conn.exec_driver_sql("SELECT s FROM v ORDER BY id").scalars().all()
        assert got == values
    finally:
        engine.dispose()
