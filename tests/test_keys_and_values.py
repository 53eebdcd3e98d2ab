"""Keys of every kind chunk correctly, and values survive a plain copy exactly."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

import rowferry
from rowferry import Copy, Migration, Snapshot, Target
from rowferry.documents import loads as documents_loads
from rowferry.state import quarantine
from rowferry.verify.check import verify

DATETIME6 = (
    sa.DateTime()
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    .with_variant(postgresql.TIMESTAMP(precision=6), "postgresql")
)
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _table(meta: sa.MetaData, name: str, key: list[sa.Column[Any]]) -> sa.Table:
    return sa.Table(
        name,
        meta,
        *key,
        sa.Column("label", sa.String(100, collation=None), nullable=True),
        mysql_charset="utf8mb4",
    )


def _copy(
    url: str,
    make: Callable[[sa.MetaData, str], sa.Table],
    rows: list[dict[str, Any]],
    chunk_size: int = 3,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Create source and target with ``make``, copy ``rows`` through rowferry, return both."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    source, target = make(meta, "src"), make(meta, "dst")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(source.insert(), rows)
    result = rowferry.run(
        Migration(name="copy", source="src", target="dst"), engine, chunk_size=chunk_size
    )
    assert result.done
    with engine.connect() as conn:
        order = [source.c[c.name] for c in source.primary_key]
        got_src = conn.execute(sa.select(source).order_by(*order)).all()
        got_dst = conn.execute(sa.select(target).order_by(*[target.c[c.name] for c in order])).all()
    engine.dispose()
    return [tuple(r) for r in got_src], [tuple(r) for r in got_dst]


def test_integer_keys_with_gaps(db_url: str) -> None:
    ids = [1, 2, 3, 7, 8, 100, 101, 5000, 2**40, 2**40 + 1]
    src, dst = _copy(
        db_url,
        lambda m, n: _table(
            m, n, [sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False)]
        ),
        [{"id": i, "label": f"row {i}"} for i in ids],
    )
    assert dst == src and len(dst) == len(ids)


def test_string_keys(db_url: str) -> None:
    keys = [
        "apple",
        "Banana",
        "cherry",
        "date-1",
        "date-10",
        "date-2",
        "zeta",
        "émile",
        "王小明",
        "山田太郎",
        "z z",
    ]
    src, dst = _copy(
        db_url,
        lambda m, n: _table(m, n, [sa.Column("code", sa.String(50), primary_key=True)]),
        [{"code": k, "label": k.upper()} for k in keys],
    )
    assert dst == src and len(dst) == len(keys)


def test_composite_keys_with_many_ties_on_the_first_column(db_url: str) -> None:
    rows = [{"tenant": t, "seq": s, "label": f"{t}/{s}"} for t in (1, 2, 3) for s in range(1, 8)]
    src, dst = _copy(
        db_url,
        lambda m, n: _table(
            m,
            n,
            [
                sa.Column("tenant", sa.Integer, primary_key=True, autoincrement=False),
                sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
            ],
        ),
        rows,
    )
    assert dst == src and len(dst) == 21


def test_datetime_keys_that_differ_only_in_microseconds(db_url: str) -> None:
    base = dt.datetime(2024, 5, 1, 10, 0, 0)
    stamps = [base + dt.timedelta(microseconds=m) for m in (0, 1, 2, 999, 1000, 999_999)]
    stamps += [base + dt.timedelta(days=d, microseconds=7) for d in (1, 2, 30)]
    src, dst = _copy(
        db_url,
        lambda m, n: _table(m, n, [sa.Column("at", DATETIME6, primary_key=True)]),
        [{"at": s, "label": s.isoformat()} for s in stamps],
    )
    assert dst == src and [r[0] for r in dst] == sorted(stamps)


def test_uuid_keys(db_url: str) -> None:
    keys = sorted(uuid.UUID(int=i * 7919 + 13) for i in range(12))
    src, dst = _copy(
        db_url,
        lambda m, n: _table(m, n, [sa.Column("id", sa.Uuid, primary_key=True)]),
        [{"id": k, "label": str(k)} for k in keys],
    )
    assert dst == src and {r[0] for r in dst} == set(keys)


def _values_table(meta: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("amount", sa.Numeric(14, 4), nullable=True),
        sa.Column("at", DATETIME6, nullable=True),
        sa.Column("born", sa.Date, nullable=True),
        sa.Column("notes", LONG_TEXT, nullable=True),
        mysql_charset="utf8mb4",
    )


def test_nulls_text_decimals_datetimes_and_long_text_are_copied_exactly(db_url: str) -> None:
    rows = [
        {"id": 1, "name": None, "amount": None, "at": None, "born": None, "notes": None},
        {
            "id": 2,
            "name": "José Ñúñez",
            "amount": Decimal("12.5000"),
            "at": dt.datetime(2024, 1, 2, 3, 4, 5, 678901),
            "born": dt.date(1990, 2, 28),
            "notes": "x" * 20_000,
        },
        {
            "id": 3,
            "name": "王小明 / 山田太郎 / Zoë Müller",
            "amount": Decimal("-0.0001"),
            "at": dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
            "born": dt.date(2000, 2, 29),
            "notes": "multi\nline\ttext with 'quotes' and \"double\" and \\ and é" * 50,
        },
        {
            "id": 4,
            "name": "",
            "amount": Decimal("9999999999.9999"),
            "at": dt.datetime(2024, 1, 1),
            "born": None,
            "notes": "",
        },
    ]
    src, dst = _copy(db_url, _values_table, rows, chunk_size=2)
    assert dst == src
    assert dst[1][2] == Decimal("12.5000") and dst[2][3].microsecond == 999999
    assert len(dst[1][5]) == 20_000


def _wide_decimals_table(meta: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("amount", sa.Numeric(38, 10), nullable=True),
    )


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
def test_decimals_wider_than_a_float_are_copied_exactly(make_db, kind: str) -> None:  # type: ignore[no-untyped-def]
    """17 and more significant digits: a value that went through a float would come back
    rounded (SQLite keeps NUMERIC values as 8-byte floats itself, so it is not asked)."""
    amounts = [
        Decimal("12345678901234567.8900000000"),
        Decimal("-9999999999999999999999999999.9999999999"),
        Decimal("0.0000000001"),
        Decimal("1234567890123456789.0000000001"),
    ]
    rows = [{"id": i, "amount": amount} for i, amount in enumerate(amounts)]
    src, dst = _copy(make_db(kind), _wide_decimals_table, rows)
    assert dst == src
    assert [row[1] for row in dst] == amounts


JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
JSON_VALUES = [
    '{"b": [1, 2.50], "a": "x"}',
    '[1, "two", null]',
    '"a bare string"',
    "true",
    "null",
    None,  # SQL NULL
    "12.50",
]


def _json_migration(shape: str) -> Migration:
    target = Target("jdst", source_key=["id"])
    if shape.startswith("snapshot"):
        snapshot = Snapshot(document="snap", columns={"id": "id", "doc": "doc"})
        pushdown = shape == "snapshot-pushdown"
        return Migration(
            name="j", source="jsrc", target=target, transform=snapshot, pushdown=pushdown
        )
    transform = Copy({"id": "id", "doc": "doc"}) if shape == "copy" else None
    return Migration(name="j", source="jsrc", target=target, transform=transform)


@pytest.mark.parametrize("shape", ["plain", "copy", "snapshot", "snapshot-pushdown"])
def test_json_columns_keep_every_value_json_can_hold(db_url: str, shape: str) -> None:
    """JSON values are copied as JSON: a JSON null stays a JSON null (not SQL NULL), a bare
    string or boolean is not taken for JSON text, and verify agrees. A plain copy reads JSON
    columns as their text; a Snapshot reads them parsed (its document needs them) and marks
    the copied ones as JSON; its pushdown copies them in SQL."""
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()
    tables = [
        sa.Table(
            name,
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("doc", JSON_TYPE, nullable=True),
            *([sa.Column("snap", JSON_TYPE, nullable=True)] if name == "jdst" else []),
        )
        for name in ("jsrc", "jdst")
    ]
    meta.create_all(engine)
    with engine.begin() as conn:
        for i, value in enumerate(JSON_VALUES):
            literal = "NULL" if value is None else "'" + value + "'"
            conn.exec_driver_sql(f"INSERT INTO jsrc (id, doc) VALUES ({i}, {literal})")
    migration = _json_migration(shape)
    result = rowferry.run(migration, engine)
    report = verify(migration, engine, all_rows=True)
    with engine.connect() as conn:
        held = quarantine.entries(conn, "j")
        text = sa.cast(tables[1].c.doc, sa.Text)
        got = conn.execute(sa.select(tables[1].c.id, text).order_by(tables[1].c.id)).all()
        snaps = conn.execute(sa.select(sa.cast(tables[1].c.snap, sa.Text))).scalars().all()
    engine.dispose()
    assert result.done and held == [] and report.ok, (held, report)
    assert [i for i, _ in got] == list(range(len(JSON_VALUES)))
    if shape.startswith("snapshot"):
        _assert_documents_hold_the_values(sa.make_url(db_url).get_backend_name(), snaps)
    for (_, stored), value in zip(got, JSON_VALUES, strict=True):
        if value is None:
            assert stored is None
        else:
            assert stored is not None
            assert json.loads(stored) == json.loads(value), (stored, value)


def _assert_documents_hold_the_values(backend: str, snaps: list[str]) -> None:
    """A snapshot's document holds each JSON value parsed, its decimals with their digits
    (PostgreSQL's jsonb keeps them; SQLite stores a JSON column's ``12.50`` as the number
    12.5). MariaDB's JSON is LONGTEXT, reflected as text: there the document holds the text."""
    found = [d["doc"] for d in sorted(map(documents_loads, snaps), key=lambda d: d["id"])]
    if backend == "mysql":
        assert found == JSON_VALUES
        return
    assert found == [None if v is None else documents_loads(v) for v in JSON_VALUES]
    if backend == "postgresql":
        assert str(found[-1]) == "12.50"


@pytest.mark.parametrize("on_conflict", ["skip", "update", "error"])
def test_conflicts_on_the_unique_key_follow_the_declared_policy(
    db_url: str, on_conflict: str
) -> None:
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()
    source, target = _values_table(meta, "src"), _values_table(meta, "dst")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(source.insert(), [{"id": i, "name": f"new {i}"} for i in range(1, 6)])
        conn.execute(target.insert(), [{"id": 3, "name": "old 3"}])
    spec = Migration(
        name="conflicts",
        source="src",
        target=Target("dst", unique_key=["id"], on_conflict=on_conflict),
    )  # type: ignore[arg-type]
    result = rowferry.run(spec, engine, chunk_size=2)
    assert result.done
    with engine.connect() as conn:
        names = dict(conn.execute(sa.select(target.c.id, target.c.name)).all())
        held = quarantine.entries(conn, "conflicts")
    engine.dispose()
    expected = {
        "skip": {1: "new 1", 2: "new 2", 3: "old 3", 4: "new 4", 5: "new 5"},
        "update": {i: f"new {i}" for i in range(1, 6)},
        # the conflicting row is rejected by the target and quarantined; its chunk goes on
        "error": {1: "new 1", 2: "new 2", 3: "old 3", 4: "new 4", 5: "new 5"},
    }
    assert names == expected[on_conflict]
    assert [e.key for e in held] == ([(3,)] if on_conflict == "error" else [])
    assert result.rows_quarantined == len(held)


@pytest.mark.parametrize("kind", ["sqlite", "mariadb"])
def test_postgresql_uuid_keys_copied_into_text_columns_elsewhere(make_db, kind: str) -> None:  # type: ignore[no-untyped-def]
    source, target = make_db("postgresql"), make_db(kind)
    keys = sorted(uuid.UUID(int=i * 104729 + 7) for i in range(9))
    src_engine, dst_engine = sa.create_engine(source), sa.create_engine(target)
    src_meta, dst_meta = sa.MetaData(), sa.MetaData()
    table = sa.Table(
        "things",
        src_meta,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("label", sa.String(40)),
    )
    copy = sa.Table(
        "things",
        dst_meta,
        sa.Column("id", sa.CHAR(36), primary_key=True),
        sa.Column("label", sa.String(40)),
    )
    src_meta.create_all(src_engine)
    dst_meta.create_all(dst_engine)
    with src_engine.begin() as conn:
        conn.execute(table.insert(), [{"id": k, "label": f"n{i}"} for i, k in enumerate(keys)])
    result = rowferry.run(
        Migration(name="uuids", source="things", target="things"),
        src_engine,
        dst_engine,
        chunk_size=4,
    )
    with dst_engine.connect() as conn:
        copied = conn.execute(sa.select(copy.c.id).order_by(copy.c.id)).scalars().all()
    src_engine.dispose()
    dst_engine.dispose()
    assert result.done and copied == [str(k) for k in keys]
