"""COPY into PostgreSQL in binary: the same rows as text COPY, and text whenever binary could
send a value other than the one given."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import rowferry
from harness.databases import create_database, drop_database
from rowferry import Migration, Target, documents
from rowferry.drivers import pg_copy
from rowferry.state import quarantine

from .test_keys_and_values import _copy

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    url = create_database("postgresql", tmp_path)
    yield url
    drop_database(url)


def _table(meta: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("small", sa.SmallInteger),
        sa.Column("big", sa.BigInteger),
        sa.Column("flag", sa.Boolean),
        sa.Column("ratio", postgresql.DOUBLE_PRECISION),
        sa.Column("amount", sa.Numeric(30, 6)),
        sa.Column("at", sa.DateTime),
        sa.Column("at_tz", sa.DateTime(timezone=True)),
        sa.Column("day", sa.Date),
        sa.Column("ref", sa.Uuid),
        sa.Column("doc", postgresql.JSON),
        sa.Column("docb", postgresql.JSONB),
        sa.Column("code", sa.CHAR(4)),
        sa.Column("name", sa.String(20)),
        sa.Column("body", sa.Text),
    )


def _row(i: int, **changes: Any) -> dict[str, Any]:
    row = {
        "id": i,
        "small": -(2**15) if i % 2 else 2**15 - 1,
        "big": -(2**63) if i % 2 else 2**63 - 1,
        "flag": bool(i % 2),
        "ratio": [0.1, -1e308, float("inf"), 5e-324][i % 4],
        "amount": [Decimal("-12345678901234567890.123456"), Decimal("NaN"), Decimal("1E+3")][i % 3],
        "at": dt.datetime(1, 1, 1) if i % 2 else dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        "at_tz": dt.datetime(2024, 2, 29, 23, 30, tzinfo=PLUS2 if i % 2 else UTC),
        "day": dt.date(2000, 2, 29),
        "ref": uuid.UUID(int=i),
        "doc": {"b": 1, "a": [1.5, "王"]},
        "docb": {"b": 1, "a": [1.5, 'é and "quoted"']},
        "code": "ab",
        "name": "Zoë 'quoted' \\ \t\n",
        "body": "x" * 10_000,
    }
    row.update(changes)
    return row


@pytest.fixture
def formats(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The format of every COPY rowferry sends ("binary" or "text")."""
    seen: list[str] = []
    original = pg_copy.copy

    def spy(cursor: Any, table: str, cols: str, binary: Any, rows: Any) -> None:
        seen.append("text" if binary is None else "binary")
        original(cursor, table, cols, binary, rows)

    monkeypatch.setattr(pg_copy, "copy", spy)
    return seen


def _copied(url: str, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    want, got = _copy(url, _table, rows, chunk_size=100)
    assert _comparable(got) == _comparable(want)
    return got


def _comparable(rows: Any) -> list[tuple[Any, ...]]:
    """Decimals as text: Decimal("NaN") is not equal to itself."""
    return [tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in rows]


def test_every_binary_type_arrives_as_text_copy_would_have_it(
    pg_url: str, formats: list[str]
) -> None:
    rows = [_row(i) for i in range(6)] + [{"id": 99, **dict.fromkeys(list(_row(0))[1:])}]
    meta = sa.MetaData()
    table = _table(meta, "t")
    # as the writer hands them over: documents rendered to JSON text
    values = [
        tuple(documents.dumps(v) if isinstance(v, dict) else v for v in r.values()) for r in rows
    ]
    assert pg_copy.binary_types(table, list(rows[0]), values) is not None
    got = _copied(pg_url, rows)
    assert formats == ["binary"]
    assert got[0][5] == Decimal("-12345678901234567890.123456")
    assert got[1][7] == dt.datetime(2024, 2, 29, 21, 30, tzinfo=UTC)
    assert got[0][12] == "ab  "  # char(4) pads, as on the text path


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("small", 2**15),  # past int2: binary would send it wrapped
        ("id", True),  # a bool for an integer
        ("at", dt.datetime(2024, 1, 1, tzinfo=UTC)),  # aware into timestamp
        ("at_tz", dt.datetime(2024, 1, 1)),  # naive into timestamptz
        ("ref", str(uuid.UUID(int=3))),  # text for a uuid
        ("amount", 5),  # an int for a numeric
        ("ratio", Decimal("0.5")),  # a decimal for a double
    ],
)
def test_a_value_binary_would_not_send_as_given_sends_the_chunk_in_text(
    column: str, value: Any
) -> None:
    meta = sa.MetaData()
    table = _table(meta, "t")
    rows = [_row(1), _row(2, **{column: value})]
    assert pg_copy.binary_types(table, list(rows[0]), [tuple(r.values()) for r in rows]) is None


def test_bytea_goes_in_text() -> None:
    table = sa.Table("t", sa.MetaData(), sa.Column("blob", postgresql.BYTEA))
    assert pg_copy.binary_types(table, ["blob"], [(b"x",)]) is None


def test_out_of_range_integer_is_quarantined_not_wrapped(pg_url: str, formats: list[str]) -> None:
    engine = sa.create_engine(pg_url)
    meta = sa.MetaData()
    src = sa.Table(
        "src", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.BigInteger)
    )
    dst = sa.Table(
        "dst", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer)
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(src.insert(), [{"id": i, "n": 2**31 if i == 3 else i} for i in range(1, 6)])
    result = rowferry.run(Migration(name="c", source="src", target=Target("dst")), engine)
    with engine.connect() as conn:
        got = conn.execute(sa.select(dst.c.n).order_by(dst.c.id)).scalars().all()
        held = quarantine.entries(conn, "c")
    engine.dispose()
    assert result.done and got == [1, 2, 4, 5]
    assert formats[0] == "text" and set(formats[-2:]) == {"binary"}  # then bisection
    assert [e.key for e in held] == [(3,)] and "out of range" in held[0].reason


def test_skip_and_update_policies_go_through_the_staging_table_in_binary(
    pg_url: str, formats: list[str]
) -> None:
    engine = sa.create_engine(pg_url)
    meta = sa.MetaData()
    src, dst = _table(meta, "src"), _table(meta, "dst")
    meta.create_all(engine)
    rows = [_row(i) for i in range(4)]
    with engine.begin() as conn:
        conn.execute(src.insert(), rows)
        conn.execute(dst.insert(), [_row(1, name="old")])
    migration = Migration(
        name="c", source="src", target=Target("dst", unique_key=["id"], on_conflict="update")
    )
    assert rowferry.run(migration, engine).done
    with engine.connect() as conn:
        names = conn.execute(sa.select(dst.c.name).order_by(dst.c.id)).scalars().all()
        docs = conn.execute(sa.select(dst.c.docb).order_by(dst.c.id)).scalars().all()
    engine.dispose()
    assert formats == ["binary"]
    assert names == [rows[0]["name"]] * 4
    assert docs[0] == {"b": 1, "a": [1.5, 'é and "quoted"']}
