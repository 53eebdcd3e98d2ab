"""rowferry's own multi-row INSERTs on MariaDB: exact text, packet-sized statements, the
server's sql_mode respected, errors that bisection can use."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

import rowferry
from harness.databases import create_database, drop_database
from rowferry import Migration
from rowferry.dialects.mysql import MySQLDialect
from rowferry.drivers import mysql_insert
from rowferry.state import quarantine

from .conftest import require_driver

NASTY = [
    "",
    "plain",
    "O'Brien's \"quoted\" text",
    "back\\slash \\' \\\\ and \\n literally",
    "nul \x00 byte, ctrl-z \x1a, newline \n, return \r, tab \t",
    "percent %s %% %(name)s",
    "王小明 / 山田太郎 / Zoë Müller / emoji 🚚",
    '{"json": "with \\"escapes\\" and \\\\ and \\u00e9"}',
    "ends with a backslash \\",
]


DRIVERS = ["pymysql", "mysqldb"]


@pytest.fixture
def mariadb_url(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = create_database("mariadb", tmp_path)
    yield url
    drop_database(url)


def _engine(url: str, driver: str) -> sa.Engine:
    require_driver(driver)
    engine = rowferry.dialects.connect.create_engine(url.replace("+pymysql", f"+{driver}"))
    assert engine.dialect.driver == driver
    return engine


def _table(meta: sa.MetaData) -> sa.Table:
    return sa.Table(
        "t",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("text", mysql.MEDIUMTEXT(charset="utf8mb4"), nullable=True),
        sa.Column("amount", sa.Numeric(14, 4), nullable=True),
        sa.Column("at", mysql.DATETIME(fsp=6), nullable=True),
        sa.Column("ok", sa.Boolean, nullable=True),
        sa.Column("blob", sa.LargeBinary, nullable=True),
        mysql_charset="utf8mb4",
    )


def _rows() -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for i, text in enumerate(NASTY):
        rows.append(
            (
                i,
                text,
                Decimal("-12.3400") if i % 2 else None,
                dt.datetime(2024, 2, 29, 23, 59, 59, 999999) if i % 3 else None,
                bool(i % 2),
                bytes(range(256)) if i == 3 else None,
            )
        )
    return rows


def _write(engine: sa.Engine, table: sa.Table, rows: list[tuple[object, ...]]) -> int:
    dialect = MySQLDialect(engine.dialect)
    columns = [c.name for c in table.columns]
    with engine.connect() as conn:
        written = dialect.write_rows(conn, table, columns, rows, ["id"], "error")
        conn.commit()
    return written


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("sql_mode", ["default", "NO_BACKSLASH_ESCAPES"])
def test_every_value_comes_back_exactly(mariadb_url: str, sql_mode: str, driver: str) -> None:
    engine = _engine(mariadb_url, driver)
    if sql_mode != "default":
        sa.event.listen(
            engine,
            "connect",
            lambda dbapi, _: dbapi.cursor().execute(
                "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"
            ),
        )
    meta = sa.MetaData()
    table = _table(meta)
    meta.create_all(engine)
    rows = _rows()
    assert _write(engine, table, rows) == len(rows)
    with engine.connect() as conn:
        if sql_mode != "default":
            assert "NO_BACKSLASH_ESCAPES" in conn.exec_driver_sql("SELECT @@sql_mode").scalar()
        got = [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]
    engine.dispose()
    assert got == rows


@pytest.mark.parametrize("driver", DRIVERS)
def test_statements_are_cut_at_the_packet_limit_and_a_huge_row_goes_alone(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    monkeypatch.setattr(mysql_insert, "MAX_STATEMENT_BYTES", 8 * 1024)
    engine = _engine(mariadb_url, driver)
    meta = sa.MetaData()
    table = _table(meta)
    meta.create_all(engine)
    rows: list[tuple[object, ...]] = [
        (i, f"row {i} " + "x" * 1000, None, None, None, None) for i in range(40)
    ]
    rows.append((40, "y" * 50_000, None, None, None, None))  # alone larger than the limit
    statements: list[bytes] = []
    original = mysql_insert._statements

    def counting(*args):  # type: ignore[no-untyped-def]
        for statement in original(*args):
            statements.append(statement)
            yield statement

    monkeypatch.setattr(mysql_insert, "_statements", counting)
    assert _write(engine, table, rows) == 41
    assert len(statements) >= 6
    assert all(len(s) <= 8 * 1024 for s in statements[:-1])
    assert statements[-1].count(b"),(") == 0 and len(statements[-1]) > 50_000
    with engine.connect() as conn:
        got = dict(conn.execute(sa.select(table.c.id, table.c.text)).all())
    engine.dispose()
    assert got == {r[0]: r[1] for r in rows}


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_rejected_row_is_quarantined_with_the_servers_reason(
    mariadb_url: str, driver: str
) -> None:
    engine = _engine(mariadb_url, driver)
    meta = sa.MetaData()
    src = sa.Table(
        "src",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("code", sa.String(20)),
    )
    sa.Table(
        "dst",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("code", sa.String(5)),  # strict mode: longer codes are refused
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            src.insert(), [{"id": i, "code": "x" * (9 if i == 7 else 3)} for i in range(20)]
        )
    result = rowferry.run(Migration(name="m", source="src", target="dst"), engine, chunk_size=50)
    with engine.connect() as conn:
        held = quarantine.entries(conn, "m")
        count = conn.exec_driver_sql("SELECT count(*) FROM dst").scalar()
    engine.dispose()
    assert result.done and count == 19
    assert [e.key for e in held] == [(7,)] and "Data too long" in held[0].reason


def test_other_values_are_rendered_by_pymysql_itself() -> None:
    class FakeDriver:
        encoding = "utf8"
        server_status = 0

        @staticmethod
        def escape(value: object) -> str:
            return f"<{type(value).__name__}>"

    render = mysql_insert._PyMySQL(FakeDriver())
    key = uuid.uuid4()
    aware = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    assert render.row(["a'b", None, 7, True, key, 1.5, aware, Decimal("NaN")]) == (
        b"('a\\'b',NULL,7,<bool>,<UUID>,<float>,<datetime>,<Decimal>)"
    )


def test_datetimes_dates_and_decimals_render_as_pymysql_escapes_them() -> None:
    from pymysql import converters  # type: ignore[import-untyped]

    class Driver:
        encoding = "utf8"
        server_status = 0
        escape = staticmethod(converters.escape_item)

    values = [
        dt.datetime(2024, 2, 29, 23, 59, 58),
        dt.datetime(2024, 2, 29, 23, 59, 58, 1),
        dt.datetime(2024, 2, 29, 23, 59, 58, 120000),
        dt.datetime(5, 1, 2, 3, 4, 5),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.date(2024, 2, 29),
        dt.date(7, 1, 1),
        Decimal("0"),
        Decimal("-0.00"),
        Decimal("12.50"),
        Decimal("-123456789012345678901234567890.123456789"),
        Decimal("1E+3"),
        Decimal("1E-7"),
        Decimal("5.0E-10"),
    ]
    render = mysql_insert._PyMySQL(Driver())
    for value in values:
        assert render.literal(value) == converters.escape_item(value, "utf8"), value


@pytest.mark.parametrize("server_status", [0, 512], ids=["backslash-escapes", "no-backslash"])
def test_rows_rendered_column_by_column_are_what_each_value_renders_as(
    server_status: int,
) -> None:
    """The column-wise fast path gives, for every column shape (one type, one type with NULLs,
    mixed types, values it leaves to PyMySQL), exactly the row-by-row text."""
    from pymysql import converters

    class Driver:
        encoding = "utf8"

        @staticmethod
        def escape(value: object) -> str:
            if isinstance(value, Decimal) and not value.is_finite():
                return "<not finite>"  # PyMySQL refuses it; the server would too
            return str(converters.escape_item(value, "utf8"))

    Driver.server_status = server_status  # type: ignore[attr-defined]
    aware = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    columns: list[list[object]] = [
        [1, -2, 10**20, 0],
        [1, None, 3, None],
        ["plain", "", "王小明 🚚", '"quoted"'],
        NASTY[:4],
        ["x", None, "it's", None],
        [dt.datetime(2024, 2, 29, 23, 59, 58), dt.datetime(5, 1, 2, 3, 4, 5, 120000)] * 2,
        [dt.datetime(2024, 2, 29), None, aware, None],  # an aware one: value by value
        [dt.date(2024, 2, 29), dt.date(7, 1, 1), None, dt.date(2000, 1, 1)],
        [Decimal("12.50"), Decimal("-0.00"), Decimal("1E+3"), Decimal("5.0E-10")],
        [Decimal("1"), Decimal("NaN"), None, Decimal("2")],  # NaN: value by value
        [Decimal("1.10"), None, Decimal("-3"), None],
        [None, dt.datetime(2024, 2, 29, 1, 2, 3, 4), None, dt.datetime(2024, 3, 1)],
        [None, "back\\slash", "{braces} {0} {:f}", None],
        ["{}", "{0}", "}{", "%s"],
        [True, False, None, True],
        [1, "1", 1.5, None],
        [None, None, None, None],
        [b"\x00bytes'", None, b"", b"\\"],
    ]
    rows = list(zip(*columns, strict=True))
    render = mysql_insert._PyMySQL(Driver())
    assert render.rows(rows) == [render.row(row) for row in rows]
    assert render.rows([]) == []
    quoted = b"'it''s'" if server_status else b"'it\\'s'"
    assert quoted in render.rows(rows)[2]
