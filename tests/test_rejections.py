"""A row the target cannot take is quarantined with the reason, and the rest of its chunk is
written: whether the server refuses it or the client finds it before sending, on every database
and driver. It is never retried as a transient error and never fails the trip.

Each test writes rows 1 to 6, one of them bad, in one chunk, and checks the target and the
quarantine with plain SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

import rowferry
from harness.databases import create_database, drop_database
from rowferry import Migration, Target
from rowferry.drivers import mysql_insert

from .conftest import require_driver

BAD = 3
IDS = [1, 2, 3, 4, 5, 6]
MB = 1024 * 1024


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def _setup(url: str, body: sa.types.TypeEngine[Any], source: list[dict[str, Any]]) -> None:
    """``src(id, body)`` with ``source`` rows, and an empty ``dst(id, body)``."""
    meta = sa.MetaData()
    src = sa.Table(
        "src",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")),
    )
    sa.Table(
        "dst",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", body),
        mysql_charset="utf8mb4",
    )
    engine = _engine(url)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(src.insert(), source)
    engine.dispose()


def _plain_source() -> list[dict[str, Any]]:
    return [{"id": i, "body": f"row {i}"} for i in IDS]


def _putting(
    value: Any, good: Callable[[dict[str, Any]], Any]
) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    """A transform that writes ``value`` as the body of row BAD, ``good(row)`` elsewhere."""

    def transform(row: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "body": value if row["id"] == BAD else good(row)}

    return transform


def _run(
    url: str,
    value: Any,
    on_conflict: str = "error",
    good: Callable[[dict[str, Any]], Any] = itemgetter("body"),
) -> rowferry.RunResult:
    target = Target("dst", unique_key="id", on_conflict=on_conflict)  # type: ignore[arg-type]
    migration = Migration(name="m", source="src", target=target, transform=_putting(value, good))
    return rowferry.run(migration, url, chunk_size=10)


def _target(url: str) -> list[tuple[Any, ...]]:
    engine = _engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql("SELECT id, body FROM dst ORDER BY id")]
    engine.dispose()
    return rows


def _quarantined(url: str) -> list[tuple[list[Any], str]]:
    engine = _engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT key_json, reason FROM rowferry_quarantine WHERE migration = 'm' ORDER BY id"
        ).all()
    engine.dispose()
    return [(json.loads(key), reason) for key, reason in rows]


def _assert_only_bad_row_quarantined(url: str, result: rowferry.RunResult, reason: str) -> None:
    assert result.status == "done"
    assert (result.rows_written, result.rows_quarantined, result.retries) == (5, 1, 0)
    assert [row[0] for row in _target(url)] == [i for i in IDS if i != BAD]
    [(key, why)] = _quarantined(url)
    assert key == [BAD] and reason in why, why


# -- bytes for a column that is not binary -------------------------------------------------------


def test_bytes_for_a_text_column_are_quarantined_not_converted(db_url: str) -> None:
    _setup(db_url, sa.Text(), _plain_source())
    result = _run(db_url, b"ok")
    _assert_only_bad_row_quarantined(db_url, result, "column 'body'")
    assert "not binary" in _quarantined(db_url)[0][1]
    assert _target(db_url)[0] == (1, "row 1")


def test_bytes_for_a_binary_column_are_written_as_given(db_url: str) -> None:
    _setup(db_url, sa.LargeBinary(), _plain_source())
    migration = Migration(
        name="m",
        source="src",
        target="dst",
        transform=lambda row, _: {"id": row["id"], "body": bytes([0, 255, row["id"]])},
    )
    result = rowferry.run(migration, db_url, chunk_size=10)
    assert result.status == "done" and result.rows_quarantined == 0
    assert [(i, bytes(body)) for i, body in _target(db_url)] == [
        (i, bytes([0, 255, i])) for i in IDS
    ]


# -- strings the connection's encoding cannot hold -----------------------------------------------


@pytest.mark.parametrize("on_conflict", ["error", "update"])
def test_a_string_with_a_lone_surrogate_is_quarantined(db_url: str, on_conflict: str) -> None:
    _setup(db_url, sa.Text(), _plain_source())
    result = _run(db_url, "a\ud800b", on_conflict)
    _assert_only_bad_row_quarantined(db_url, result, "column 'body': 'a\\ud800b'")


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb", "executemany"])
def test_a_lone_surrogate_is_quarantined_with_every_mysql_driver(
    make_db: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    url = _mysql_url(make_db("mariadb"), driver, monkeypatch)
    _setup(url, sa.Text(), _plain_source())
    result = _run(url, "a\ud800b")
    _assert_only_bad_row_quarantined(url, result, "surrogates not allowed")


@pytest.fixture
def latin1_url(dialect_name: str, tmp_path: Path) -> Iterator[str]:
    """A database whose text is latin1: a PostgreSQL database in LATIN1 (and so the client
    encoding of its connections), a MariaDB database whose tables default to latin1."""
    if dialect_name == "sqlite":
        pytest.skip("SQLite text is always UTF-8 or UTF-16")
    url = create_database(dialect_name, tmp_path)
    name = sa.make_url(url).database
    server = sa.make_url(url).set(database="postgres" if dialect_name == "postgresql" else "")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if dialect_name == "postgresql":
            conn.exec_driver_sql(f"DROP DATABASE {name}")
            conn.exec_driver_sql(
                f"CREATE DATABASE {name} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
                "TEMPLATE template0"
            )
        else:
            conn.exec_driver_sql(f"ALTER DATABASE {name} CHARACTER SET latin1")
    admin.dispose()
    yield url
    drop_database(url)


def test_a_character_the_targets_encoding_cannot_hold_is_quarantined(
    latin1_url: str, dialect_name: str
) -> None:
    meta = sa.MetaData()
    sa.Table(
        "src",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", sa.Text),
    )
    sa.Table(
        "dst",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", sa.Text),
        mysql_charset="latin1",
    )
    engine = _engine(latin1_url)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(meta.tables["src"].insert(), [{"id": i, "body": "café"} for i in IDS])
    engine.dispose()
    result = _run(latin1_url, "王")
    reason = {"mariadb": "Incorrect string value", "postgresql": "cannot be encoded in latin-1"}
    _assert_only_bad_row_quarantined(latin1_url, result, reason[dialect_name])
    assert _target(latin1_url)[0] == (1, "café")


# -- values the server refuses -------------------------------------------------------------------


@pytest.mark.parametrize("copy_format", ["binary", "text"])
def test_a_nul_character_in_a_postgresql_text_value_is_quarantined(
    make_db: Callable[[str], str], copy_format: str
) -> None:
    url = make_db("postgresql")
    _setup(url, sa.Text(), _plain_source())
    if copy_format == "text":  # a column without a binary form sends the chunk in text
        engine = _engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE dst ADD COLUMN gap interval")
        engine.dispose()
    result = _run(url, "a\x00b")
    _assert_only_bad_row_quarantined(url, result, "0x00")


def test_an_integer_too_large_for_its_column_is_quarantined(db_url: str, dialect_name: str) -> None:
    _setup(db_url, sa.BigInteger(), [{"id": i, "body": str(i)} for i in IDS])
    result = _run(db_url, 2**64)
    reason = {"sqlite": "OverflowError", "mariadb": "Out of range", "postgresql": "out of range"}
    _assert_only_bad_row_quarantined(db_url, result, reason[dialect_name])
    assert [body for _, body in _target(db_url)] == [1, 2, 4, 5, 6]


def test_a_string_for_a_datetime_column_is_quarantined(db_url: str, dialect_name: str) -> None:
    _setup(db_url, sa.DateTime(), _plain_source())
    result = _run(db_url, "not a date", good=lambda row: dt.datetime(2024, 1, row["id"], 10))
    reason = {
        "sqlite": "column 'body' (DATETIME): TypeError",
        "mariadb": "Incorrect datetime value",
        "postgresql": "invalid input syntax for type timestamp",
    }
    _assert_only_bad_row_quarantined(db_url, result, reason[dialect_name])
    assert _target(db_url)[0][1] in (dt.datetime(2024, 1, 1, 10), "2024-01-01 10:00:00.000000")


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
def test_a_string_too_long_for_its_column_is_quarantined(
    make_db: Callable[[str], str], kind: str
) -> None:
    url = make_db(kind)
    _setup(url, sa.String(8), _plain_source())
    result = _run(url, "x" * 9)
    reason = {"mariadb": "Data too long", "postgresql": "value too long"}
    _assert_only_bad_row_quarantined(url, result, reason[kind])


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
def test_a_decimal_out_of_its_columns_range_is_quarantined(
    make_db: Callable[[str], str], kind: str
) -> None:
    url = make_db(kind)
    _setup(url, sa.Numeric(5, 2), [{"id": i, "body": f"{i}.5"} for i in IDS])
    result = _run(url, Decimal("123456.78"))
    reason = {"mariadb": "Out of range", "postgresql": "numeric field overflow"}
    _assert_only_bad_row_quarantined(url, result, reason[kind])


# -- rows larger than MariaDB's max_allowed_packet -----------------------------------------------


def _mysql_url(url: str, driver: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``url`` for ``driver``; "executemany": PyMySQL through SQLAlchemy's executemany, the
    path of drivers whose statements rowferry does not render."""
    if driver == "executemany":
        monkeypatch.setattr(mysql_insert, "supports", lambda conn: False)
        return url
    require_driver(driver)
    return url.replace("+pymysql", f"+{driver}")


@contextmanager
def _max_allowed_packet(url: str, size: int) -> Iterator[None]:
    """The server's global ``max_allowed_packet`` (which connections opened meanwhile take),
    restored afterwards."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT @@GLOBAL.max_allowed_packet").scalar_one()
        conn.exec_driver_sql(f"SET GLOBAL max_allowed_packet = {size}")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SET GLOBAL max_allowed_packet = {int(before)}")
    engine.dispose()


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb", "executemany"])
def test_a_row_larger_than_max_allowed_packet_is_quarantined(
    make_db: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    url = _mysql_url(make_db("mariadb"), driver, monkeypatch)
    _setup(url, mysql.LONGTEXT(), _plain_source())
    with _max_allowed_packet(url, MB):
        result = _run(url, "x" * (2 * MB))
    _assert_only_bad_row_quarantined(url, result, "larger than max_allowed_packet")
    assert "1,048,576" in _quarantined(url)[0][1] and "2,097," in _quarantined(url)[0][1]


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb", "executemany"])
def test_a_copied_blob_larger_than_max_allowed_packet_is_quarantined(
    make_db: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    source = make_db("sqlite")
    target = _mysql_url(make_db("mariadb"), driver, monkeypatch)
    blob = bytes(range(256)) * (2 * MB // 256)
    rows = [{"id": i, "body": blob if i == BAD else bytes([i]) * 10} for i in IDS]
    for url in (source, target):
        meta = sa.MetaData()
        table = sa.Table(
            "t",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("body", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")),
        )
        engine = _engine(url)
        meta.create_all(engine)
        if url == source:
            with engine.begin() as conn:
                conn.execute(table.insert(), rows)
        engine.dispose()
    with _max_allowed_packet(target, MB):
        result = rowferry.run(Migration(name="m", source="t", target="t"), source, target)
    assert result.status == "done" and (result.rows_quarantined, result.retries) == (1, 0)
    engine = _engine(target)
    with engine.connect() as conn:
        got = conn.exec_driver_sql("SELECT id, body FROM t ORDER BY id").all()
    engine.dispose()
    assert [(i, bytes(body)) for i, body in got] == [
        (row["id"], row["body"]) for row in rows if row["id"] != BAD
    ]
    [(key, why)] = _quarantined(target)
    assert key == [BAD] and "larger than max_allowed_packet" in why
    assert "characters as JSON, is not kept" in why


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
@pytest.mark.parametrize("over", [0, 1])
def test_a_row_one_byte_short_of_max_allowed_packet_is_written_and_one_more_quarantined(
    make_db: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, driver: str, over: int
) -> None:
    url = _mysql_url(make_db("mariadb"), driver, monkeypatch)
    _setup(url, mysql.LONGTEXT(), _plain_source())
    statement = "INSERT INTO dst (id, `body`) VALUES (3,'')"  # body: a keyword of MariaDB's
    longest = MB - 1 - 1  # the server takes a packet (a command byte, the statement) below MB
    with _max_allowed_packet(url, MB):
        result = _run(url, "y" * (longest - len(statement) + over))
    assert result.status == "done" and result.retries == 0
    assert result.rows_quarantined == over
    assert [i for i, _ in _target(url)] == [i for i in IDS if i != BAD or not over]
