"""Pushdown: the database builds the rows, and they equal what the Python path writes."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine.interfaces import CacheStats

import rowferry
from harness import reference
from rowferry import (
    BelongsTo,
    ConfigError,
    Copy,
    HasMany,
    Migration,
    SchemaError,
    Snapshot,
    Target,
)
from rowferry.demo import order_history
from rowferry.dialects.mysql import binlog_allows_consistent_reads
from rowferry.plan import plan
from rowferry.state import quarantine

DATETIME6 = (
    sa.DateTime()
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    .with_variant(postgresql.TIMESTAMP(precision=6), "postgresql")
)
TIME6 = sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb")
DOC = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4"}


def _statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda c, cur, sql, *a: seen.append(sql))
    return seen


def test_the_reference_snapshots_built_by_the_database(db_url: str) -> None:
    reference.build(db_url, orders=400)
    engine = sa.create_engine(db_url)
    seen = _statements(engine)
    result = rowferry.run(order_history.pushdown_migration, engine, chunk_size=50)
    assert result.done and result.rows_written == result.rows_total == 239
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)
    # No related row leaves the server: the client only ever selects keys of orders.
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert not [s for s in reads if "order_items" in s or "patients" in s]
    inserts = [s for s in seen if s.lstrip().upper().startswith("INSERT INTO ORDER_SNAPSHOTS")]
    assert len(inserts) == result.chunks
    engine.dispose()


def test_resumes_chunk_by_chunk_like_the_python_path(db_url: str) -> None:
    reference.build(db_url, orders=300)
    engine = sa.create_engine(db_url)
    trips = 0
    while not rowferry.run(
        order_history.pushdown_migration,
        engine,
        chunk_size=40,
        budget=rowferry.Budget(max_chunks=1),
    ).done:
        trips += 1
    assert trips == 4  # 179 qualifying orders in chunks of 40: the fifth trip finishes
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)
    engine.dispose()


def test_a_later_trip_in_the_same_process_compiles_nothing_again(db_url: str) -> None:
    """The tables are the same objects while the catalog says the same (a warm Lambda
    function, a worker), so SQLAlchemy's cache serves every statement of a later trip."""
    reference.build(db_url, orders=300)
    engine = sa.create_engine(db_url)
    caching: list[Any] = []
    sa.event.listen(engine, "after_cursor_execute", lambda *a: caching.append(a[4].cache_hit))
    for _ in range(3):  # a first trip, a first trip that resumes, one more that resumes
        caching.clear()
        trip = rowferry.run(
            order_history.pushdown_migration,
            engine,
            chunk_size=40,
            budget=rowferry.Budget(max_chunks=1),
        )
        assert trip.chunks == 1
    hits = caching.count(CacheStats.CACHE_HIT)
    assert hits >= 5 and CacheStats.CACHE_MISS not in caching, caching
    engine.dispose()


def _put_in_the_way(engine: sa.Engine, order_id: int) -> None:
    """A snapshot already there: the INSERT ... SELECT of its chunk fails on the unique key."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO order_snapshots (order_id, status, snapshot) VALUES (:o, 'x', :d)"
            ),
            {"o": order_id, "d": "{}"},
        )


def test_a_rejected_chunk_goes_the_python_way_and_quarantines_the_bad_row(db_url: str) -> None:
    reference.build(db_url, orders=300)
    expected = reference.expected_snapshots(db_url)
    taken = sorted(expected)[7]
    engine = sa.create_engine(db_url)
    _put_in_the_way(engine, taken)
    result = rowferry.run(order_history.pushdown_migration, engine, chunk_size=50)
    assert result.done and result.rows_quarantined == 1
    with engine.connect() as conn:
        entries = quarantine.entries(conn, "order-history-pushdown")
    assert [e.key for e in entries] == [(taken,)]
    with engine.begin() as conn:  # the row that was in the way, still as it was
        kept = conn.execute(
            sa.text("SELECT status FROM order_snapshots WHERE order_id = :o"), {"o": taken}
        )
        assert kept.scalar_one() == "x"
        conn.execute(sa.text("DELETE FROM order_snapshots WHERE order_id = :o"), {"o": taken})
    got = reference.snapshots(db_url)
    assert {k: v for k, v in got.items() if k != taken} == {
        k: v for k, v in expected.items() if k != taken
    }
    engine.dispose()


def test_a_rejected_chunk_larger_than_the_python_ceiling_goes_the_python_way_in_pieces(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pushed-down chunk may be larger than what the Python path holds at once: when it is
    rejected, the Python path takes it in pieces of at most MAX_CHUNK_SIZE, each with its own
    checkpoint, and the trip goes on (a full piece is not the last chunk)."""
    monkeypatch.setattr(rowferry.defaults, "MAX_CHUNK_SIZE", 20)
    reference.build(db_url, orders=300)
    expected = reference.expected_snapshots(db_url)
    taken = sorted(expected)[7]
    engine = sa.create_engine(db_url)
    _put_in_the_way(engine, taken)
    sizes: list[int] = []
    result = rowferry.run(
        order_history.pushdown_migration,
        engine,
        chunk_size=100,
        on_chunk=lambda done: sizes.append(done.rows_read),
    )
    with engine.begin() as conn:  # the row that was in the way
        conn.execute(sa.text("DELETE FROM order_snapshots WHERE order_id = :o"), {"o": taken})
    engine.dispose()
    # 179 qualifying: the rejected first chunk's first 20 (the bad row among them) the Python
    # way, then 100 and 59 pushed down again
    assert result.done and result.rows_quarantined == 1 and sizes == [20, 100, 59]
    got = reference.snapshots(db_url)
    assert {k: v for k, v in got.items() if k != taken} == {
        k: v for k, v in expected.items() if k != taken
    }


def test_auto_sized_pushed_down_chunks_grow_past_the_python_ceiling(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pushed-down chunks hold no rows in the client: "auto" grows them past MAX_CHUNK_SIZE,
    which still bounds the Python path's chunks. The size is a bound parameter, so a chunk of a
    new size sends the same statement (compiled once, prepared by the driver)."""
    monkeypatch.setattr(rowferry.defaults, "CHUNK_SIZE", 50)
    monkeypatch.setattr(rowferry.defaults, "MAX_CHUNK_SIZE", 50)
    reference.build(db_url, orders=1000)
    engine = sa.create_engine(db_url)
    seen = _statements(engine)
    sizes: dict[str, list[int]] = {}

    def record(done: rowferry.ChunkDone) -> None:
        sizes.setdefault(done.migration, []).append(done.rows_read)

    for migration in (order_history.pushdown_migration, order_history.migration):
        reference.start_over(db_url)  # empty the shared target
        result = rowferry.run(migration, engine, on_chunk=record)
        assert result.done and sum(sizes[migration.name]) == result.rows_read
    engine.dispose()
    assert max(sizes[order_history.pushdown_migration.name]) > 50  # doubled at least once
    assert max(sizes[order_history.migration.name]) == 50
    ends = {s for s in seen if "LIMIT" in s and "count(" in s.lower()}
    assert len(ends) == 2, ends  # the first chunk's (no cursor yet), then every other's


def _type_tables(meta: sa.MetaData, dialect: str) -> None:
    extra: list[sa.Column[Any]] = []
    if dialect != "sqlite":
        extra.append(sa.Column("raw", sa.LargeBinary(64)))
    if dialect == "postgresql":
        extra += [
            sa.Column("aware", postgresql.TIMESTAMP(timezone=True, precision=6)),
            sa.Column("ident", postgresql.UUID(as_uuid=True)),
            sa.Column("ratio", postgresql.DOUBLE_PRECISION()),
            sa.Column("flag", sa.Boolean()),
        ]
    if dialect == "sqlite":
        extra.append(sa.Column("flag", sa.Boolean()))
    sa.Table(
        "kinds",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(20)),
        **OPTIONS,
    )
    sa.Table(
        "things",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("amount", sa.Numeric(12, 4)),
        sa.Column("price", sa.Numeric(10, 2)),
        sa.Column("at", DATETIME6),
        sa.Column("day", sa.Date),
        sa.Column("moment", TIME6),
        sa.Column("name", sa.String(200)),
        sa.Column("data", sa.JSON),
        sa.Column("kind_id", sa.Integer),
        *extra,
        **OPTIONS,
    )
    sa.Table(
        "parts",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("thing_id", sa.Integer, index=True),
        sa.Column("kind_id", sa.Integer),
        sa.Column("cost", sa.Numeric(10, 3)),
        **OPTIONS,
    )
    for name in ("docs_python", "docs_sql"):
        sa.Table(
            name,
            meta,
            sa.Column("thing_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("label", sa.String(200)),
            sa.Column("doc", DOC),
            **OPTIONS,
        )


def _type_rows(dialect: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(1, 13):
        row: dict[str, Any] = {
            "id": i * 3,
            "amount": Decimal(f"{i}.{i:04d}") if i % 4 else None,
            "price": Decimal("12.50") if i % 2 else Decimal("-0.07"),
            "at": dt.datetime(2024, 2, 29, 23, 59, 59, 0 if i % 3 else i) if i != 5 else None,
            "day": dt.date(1999, 12, 31) if i != 6 else None,
            "moment": dt.time(7, 8, 9, i * 1000) if i % 5 else dt.time(0, 0),
            "name": ['José "王" \\ \n tab\t', "", None, "plain"][i % 4],
            "data": {"n": i, "list": [1, "two", None], "nested": {"ok": True}} if i % 3 else None,
            "kind_id": (i % 3) or None,
        }
        if dialect != "sqlite":
            row["raw"] = bytes(range(i * 5)) if i % 2 else None
        if dialect == "postgresql":
            zone = dt.timezone(dt.timedelta(hours=i % 5))
            row |= {
                "aware": dt.datetime(2024, 1, 1, 12, 0, i, i, tzinfo=zone),
                "ident": uuid.UUID(int=i),
                "ratio": i / 7,
            }
        if dialect in ("postgresql", "sqlite"):
            row["flag"] = [True, False, None][i % 3]
        rows.append(row)
    return rows


def _snapshot_migration(target: str, pushdown: bool) -> Migration:
    return Migration(
        name=f"types-{target}",
        source="things",
        relations={
            "kind": BelongsTo("kinds", foreign_key="kind_id"),
            "parts": HasMany(
                "parts",
                foreign_key="thing_id",
                order_by=["cost", "id"],
                relations={"kind": BelongsTo("kinds", foreign_key="kind_id")},
            ),
        },
        transform=Snapshot(document="doc", columns={"thing_id": "id", "label": "name"}),
        target=Target(target),
        pushdown=pushdown,
    )


def test_every_supported_type_renders_the_same_in_sql_and_in_python(
    db_url: str, dialect_name: str
) -> None:
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()
    _type_tables(meta, dialect_name)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            meta.tables["kinds"].insert(), [{"id": 1, "label": "a"}, {"id": 2, "label": None}]
        )
        conn.execute(meta.tables["things"].insert(), _type_rows(dialect_name))
        parts = [
            {"id": p, "thing_id": (p % 7) * 3, "kind_id": p % 4 or None, "cost": Decimal(p % 3)}
            for p in range(1, 30)
        ]
        conn.execute(meta.tables["parts"].insert(), parts)
    assert rowferry.run(_snapshot_migration("docs_python", False), engine, chunk_size=5).done
    assert rowferry.run(_snapshot_migration("docs_sql", True), engine, chunk_size=5).done
    with engine.connect() as conn:
        python = conn.execute(
            sa.text("SELECT thing_id, label, doc FROM docs_python ORDER BY thing_id")
        ).all()
        pushed = conn.execute(
            sa.text("SELECT thing_id, label, doc FROM docs_sql ORDER BY thing_id")
        ).all()
    assert len(python) == len(pushed) == 12
    for a, b in zip(python, pushed, strict=True):
        assert (a[0], a[1]) == (b[0], b[1])
        assert _parsed(a[2]) == _parsed(b[2]), a[0]
    engine.dispose()


def test_sqlite_datetimes_not_in_the_stored_form_render_the_same(tmp_path: Any) -> None:
    """SQLAlchemy stores ``YYYY-MM-DD HH:MM:SS.ffffff``; text written by other tools (no
    fraction, a shorter fraction, no time, a ``T``) must render in SQL as the Python path
    renders it too, whether it takes the stored form's shortcut (26 characters) or not."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dates.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE events (id INTEGER NOT NULL PRIMARY KEY, at DATETIME)")
        for name in ("docs_python", "docs_sql"):
            conn.exec_driver_sql(
                f"CREATE TABLE {name} (event_id INTEGER NOT NULL PRIMARY KEY, doc TEXT)"
            )
        conn.exec_driver_sql(
            "INSERT INTO events VALUES (1, '2024-05-01 10:00:00.000001'), "
            "(2, '2024-05-01 10:00:00'), (3, '2024-05-01'), (4, NULL), "
            "(5, '1999-12-31 23:59:59.999999'), (6, '2024-05-01T10:00:00.250000'), "
            "(7, '2024-05-01 10:00:00.25')"
        )
    for target, pushdown in (("docs_python", False), ("docs_sql", True)):
        migration = Migration(
            name=target,
            source="events",
            transform=Snapshot(document="doc", columns={"event_id": "id"}),
            target=Target(target),
            pushdown=pushdown,
        )
        assert rowferry.run(migration, engine).done
    with engine.connect() as conn:
        python = conn.exec_driver_sql("SELECT doc FROM docs_python ORDER BY event_id").all()
        pushed = conn.exec_driver_sql("SELECT doc FROM docs_sql ORDER BY event_id").all()
    engine.dispose()
    assert [json.loads(d) for (d,) in pushed] == [json.loads(d) for (d,) in python]
    assert [json.loads(d)["at"] for (d,) in pushed] == [
        "2024-05-01T10:00:00.000001",
        "2024-05-01T10:00:00.000000",
        "2024-05-01T00:00:00.000000",
        None,
        "1999-12-31T23:59:59.999999",
        "2024-05-01T10:00:00.250000",
        "2024-05-01T10:00:00.250000",
    ]


def _parsed(text: str) -> Any:
    """Parsed JSON, decimals exact except inside JSON columns (see the README)."""
    doc = json.loads(text, parse_float=Decimal)
    if isinstance(doc.get("data"), dict):
        doc["data"] = json.loads(json.dumps(doc["data"], default=float))
    return doc


def _both_ways(
    engine: sa.Engine, meta: sa.MetaData, source: str, relations: dict[str, Any]
) -> tuple[list[Any], list[Any]]:
    """Snapshots of ``source`` made on the Python path into ``{source}_python`` and pushed
    down into ``{source}_sql``, parsed (decimals exact), in key order."""
    for target, pushdown in ((f"{source}_python", False), (f"{source}_sql", True)):
        spec = Migration(
            name=target,
            source=source,
            relations=relations,
            transform=Snapshot(document="doc", columns={"id": "id"}),
            target=Target(target),
            pushdown=pushdown,
        )
        assert rowferry.run(spec, engine, chunk_size=3).done
    with engine.connect() as conn:
        python, pushed = (
            [
                json.loads(text, parse_float=Decimal)
                for (text,) in conn.execute(
                    sa.select(sa.cast(meta.tables[t].c.doc, sa.Text)).order_by(meta.tables[t].c.id)
                )
            ]
            for t in (f"{source}_python", f"{source}_sql")
        )
    return python, pushed


@pytest.mark.parametrize("doc_type", ["json", "text"])
def test_a_row_of_more_than_fifty_columns(db_url: str, doc_type: str) -> None:
    """PostgreSQL builds objects 50 pairs at a time and merges them; every column arrives."""
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()
    names = [f"c{i:02d}" for i in range(70)]
    sa.Table(
        "wide",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        *[sa.Column(n, sa.Numeric(8, 2) if i % 2 else sa.String(20)) for i, n in enumerate(names)],
        **OPTIONS,
    )
    for target in ("wide_python", "wide_sql"):
        sa.Table(
            target,
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("doc", sa.JSON if doc_type == "json" else DOC),
            **OPTIONS,
        )
    meta.create_all(engine)
    rows = [
        {
            "id": r,
            **{n: (Decimal(f"{r}.{i:02d}") if i % 2 else f"{n}-{r}") for i, n in enumerate(names)},
        }
        for r in range(1, 8)
    ]
    with engine.begin() as conn:
        conn.execute(meta.tables["wide"].insert(), rows)
    python, pushed = _both_ways(engine, meta, "wide", {})
    engine.dispose()
    assert len(pushed) == 7 and len(pushed[0]) == 71
    assert pushed == python
    assert pushed[2]["c01"] == Decimal("3.01") and pushed[6]["c68"] == "c68-7"


def test_keys_with_quotes_percent_signs_and_backslashes(db_url: str) -> None:
    """The keys of a document are written into the statement as literals: a column or relation
    named with a quote, a ``%`` (the drivers that take ``%s``) or a backslash (MySQL's escapes)
    arrives as named, and the Python path agrees."""
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()
    odd = ["it's", "50%", "a\\b", "%Y"]
    sa.Table(
        "odd",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        *[sa.Column(name, sa.String(20)) for name in odd],
        **OPTIONS,
    )
    sa.Table(
        "odd_child",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("odd_id", sa.Integer, index=True),
        sa.Column("o'k %s", sa.String(20)),
        **OPTIONS,
    )
    for target in ("odd_python", "odd_sql"):
        sa.Table(
            target,
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("doc", DOC),
            **OPTIONS,
        )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            meta.tables["odd"].insert(),
            [{"id": r, **{n: f"{n} {r}%" for n in odd}} for r in range(1, 5)],
        )
        conn.execute(
            meta.tables["odd_child"].insert(),
            [{"id": r, "odd_id": 1 + r % 3, "o'k %s": f"\\{r}'"} for r in range(1, 7)],
        )
    relations = {"kids' %": HasMany("odd_child", foreign_key="odd_id", order_by="id")}
    python, pushed = _both_ways(engine, meta, "odd", relations)
    engine.dispose()
    assert pushed == python and len(pushed) == 4
    assert set(pushed[0]) == {"id", *odd, "kids' %"}
    assert pushed[0]["50%"] == "50% 1%" and pushed[0]["kids' %"][0] == {
        "id": 3,
        "odd_id": 1,
        "o'k %s": "\\3'",
    }


def test_a_copy_with_renamed_columns(db_url: str) -> None:
    reference.build(db_url, orders=200)
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()
    copies = sa.Table(
        "order_copies",
        meta,
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(20)),
        sa.Column("amount", sa.Numeric(10, 2)),
        **OPTIONS,
    )
    meta.create_all(engine)
    columns = {"order_id": "id", "state": "status", "amount": "total"}
    for pushdown in (True, False):
        with engine.begin() as conn:
            conn.execute(copies.delete())
        migration = Migration(
            name=f"copy-{pushdown}",
            source="orders",
            transform=Copy(columns),
            target=Target("order_copies", unique_key="order_id", on_conflict="update"),
            pushdown=pushdown,
        )
        assert rowferry.run(migration, engine, chunk_size=30).rows_written == 200
        with engine.connect() as conn:
            got = conn.execute(sa.select(copies).order_by(copies.c.order_id)).all()
            orders = sa.Table("orders", sa.MetaData(), autoload_with=conn)
            want = conn.execute(
                sa.select(orders.c.id, orders.c.status, orders.c.total).order_by(orders.c.id)
            ).all()
        assert [tuple(r) for r in got] == [tuple(r) for r in want]
    engine.dispose()


def test_a_composite_key_chunks_exactly_once(db_url: str) -> None:
    """The end of a chunk with a two-column key, with ties on the first column across chunks
    and a filter: every qualifying row once, in as many chunks as the size says."""
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()

    def columns() -> list[sa.Column[Any]]:
        return [
            sa.Column("region", sa.String(10), primary_key=True),
            sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("kept", sa.Boolean, nullable=False),
        ]

    src = sa.Table("lines", meta, *columns(), **OPTIONS)
    dst = sa.Table("line_copies", meta, *columns(), **OPTIONS)
    meta.create_all(engine)
    rows = [
        {"region": region, "n": n, "kept": (n + len(region)) % 3 != 0}
        for region in ("a", "bb", "c")
        for n in range(25)
    ]
    with engine.begin() as conn:
        conn.execute(src.insert(), rows)
    migration = Migration(
        name="lines",
        source="lines",
        where="kept = :yes",
        params={"yes": True},
        transform=Copy({"region": "region", "n": "n", "kept": "kept"}),
        target=Target("line_copies"),
        pushdown=True,
    )
    result = rowferry.run(migration, engine, chunk_size=7)
    with engine.connect() as conn:
        got = conn.execute(sa.select(dst.c.region, dst.c.n).order_by(dst.c.region, dst.c.n)).all()
    engine.dispose()
    want = sorted((r["region"], r["n"]) for r in rows if r["kept"])
    assert [tuple(r) for r in got] == want
    assert result.rows_written == len(want) and result.chunks == -(-len(want) // 7)


def test_a_single_column_key_chunk_ends_where_the_size_says(db_url: str) -> None:
    reference.build(db_url, orders=100)
    engine = sa.create_engine(db_url)
    result = rowferry.run(order_history.pushdown_migration, engine, chunk_size=16)
    with engine.connect() as conn:
        finished = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM orders WHERE status IN ('uncollected', 'cancelled', 'dispensed')"
        ).scalar_one()
    engine.dispose()
    assert result.rows_written == finished and result.chunks == -(-finished // 16)


def test_pushdown_is_refused_before_any_write_when_it_cannot_be_done(
    db_url: str, dialect_name: str
) -> None:
    reference.build(db_url, orders=50)
    engine = sa.create_engine(db_url)
    function = order_history.migration.__class__(
        **{**order_history.migration.__dict__, "pushdown": True}
    )
    with pytest.raises(ConfigError, match="transform is a Python function"):
        rowferry.run(function, engine)
    unknown = Migration(
        name="bad-copy",
        source="orders",
        transform=Copy({"order_id": "no_such_column"}),
        target="order_snapshots",
        pushdown=True,
    )
    with pytest.raises(SchemaError, match="no_such_column"):
        rowferry.run(unknown, engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM order_snapshots")).scalar() == 0
    engine.dispose()


def test_different_source_and_target_databases_cannot_push_down(make_db: Any) -> None:
    source, target = make_db("mariadb"), make_db("postgresql")
    reference.build(source, orders=50)
    reference.build(target, orders=0)
    with pytest.raises(ConfigError, match="different databases"):
        rowferry.run(order_history.pushdown_migration, source, target)


def test_plan_shows_the_pushed_down_statement_and_offers_pushdown(db_url: str) -> None:
    reference.build(db_url, orders=100)
    pushed = plan(order_history.pushdown_migration, db_url)
    assert pushed.pushdown.startswith("on")
    locks = {  # this MariaDB logs nothing: READ COMMITTED is allowed
        "mysql": "each chunk runs READ COMMITTED",
        "postgresql": "no source rows are locked",
        "sqlite": "other writers of the database wait for each chunk's commit",
    }
    assert locks[db_url.split(":")[0].split("+")[0]] in pushed.pushdown
    assert pushed.queries[0].title.startswith("end (count, first and last keys) of the first")
    assert pushed.write_sql is not None and "order_items" in pushed.write_sql
    assert all(q.explain for q in pushed.queries)
    offered = plan(
        order_history.pushdown_migration.__class__(
            **{**order_history.pushdown_migration.__dict__, "pushdown": False}
        ),
        db_url,
    )
    assert offered.pushdown.startswith("available")
    assert plan(order_history.migration, db_url).pushdown.startswith("not available")


def test_a_document_past_a_megabyte_is_not_cut(db_url: str) -> None:
    """MariaDB cuts JSON_ARRAYAGG at group_concat_max_len (1 MiB by default) with a warning."""
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()
    sa.Table("parents", meta, sa.Column("id", sa.Integer, primary_key=True), **OPTIONS)
    sa.Table(
        "children",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, index=True),
        sa.Column("text", sa.String(600)),
        **OPTIONS,
    )
    sa.Table(
        "docs",
        meta,
        sa.Column("parent_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("doc", DOC),
        **OPTIONS,
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(meta.tables["parents"].insert(), [{"id": 1}, {"id": 2}])
        conn.execute(
            meta.tables["children"].insert(),
            [
                {"id": i, "parent_id": 1 + i % 2, "text": f"{i:05d}" + "x" * 500}
                for i in range(1, 6001)
            ],
        )
    migration = Migration(
        name="big",
        source="parents",
        relations={"children": HasMany("children", foreign_key="parent_id")},
        transform=Snapshot(document="doc", columns={"parent_id": "id"}),
        target="docs",
        pushdown=True,
    )
    seen = _statements(engine)
    assert rowferry.run(migration, engine).done
    # Built by the database, not by the Python path after a failed INSERT ... SELECT (MariaDB's
    # strict mode turns the cut into an error; without it the cut document would be stored).
    assert not [s for s in seen if s.lstrip().upper().startswith("SELECT") and "children" in s]
    with engine.connect() as conn:
        docs = [
            json.loads(d)
            for d in conn.execute(sa.text("SELECT doc FROM docs ORDER BY parent_id")).scalars()
        ]
    assert [len(d["children"]) for d in docs] == [3000, 3000]
    assert docs[0]["children"][-1]["text"].startswith("06000")
    engine.dispose()


def test_postgresql_chunks_are_not_jit_compiled_and_the_connection_keeps_its_setting(
    make_db: Any,
) -> None:
    """Past ``jit_above_cost`` PostgreSQL would compile each chunk's INSERT (30-40 ms a chunk at
    4,000 reference orders): each chunk's transaction turns JIT off, for itself only, in the
    statement that finds the chunk's bounds (no ``SET`` statement of its own)."""
    url = make_db("postgresql")
    reference.build(url, orders=300)
    engine = sa.create_engine(url, pool_size=1)

    def jit_on(dbapi: Any, record: Any) -> None:  # the session's own setting, committed
        dbapi.cursor().execute("SET jit = on")
        dbapi.commit()

    sa.event.listen(engine, "connect", jit_on)
    during: list[str] = []
    sent: list[str] = []

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement.lstrip().upper())
        if statement.lstrip().upper().startswith("INSERT INTO ORDER_SNAPSHOTS"):
            probe = cursor.connection.cursor()
            probe.execute("SHOW jit")
            during.append(probe.fetchone()[0])

    sa.event.listen(engine, "after_cursor_execute", after)
    result = rowferry.run(order_history.pushdown_migration, engine, chunk_size=50)
    assert result.done and result.chunks == 4
    assert during == ["off"] * 4
    assert not [s for s in sent if s.startswith("SET")]
    with engine.connect() as conn:  # the pool's one connection, the one the trip used
        assert conn.exec_driver_sql("SHOW jit").scalar_one() == "on"
    assert reference.snapshots(url) == reference.expected_snapshots(url)
    engine.dispose()


def test_mariadb_chunks_lock_no_source_rows_and_the_connection_keeps_its_level(
    make_db: Any,
) -> None:
    """Under REPEATABLE READ, InnoDB's INSERT ... SELECT holds shared locks on every source row
    it read until the chunk commits. Each chunk's transaction is READ COMMITTED instead: a
    writer of the chunk's orders and items goes through while the chunk is still open."""
    url = make_db("mariadb")
    reference.build(url, orders=300)
    expected = reference.expected_snapshots(url)
    engine = sa.create_engine(url, pool_size=1)
    writer = sa.create_engine(url)
    seen: list[tuple[str, str]] = []

    def after(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO ORDER_SNAPSHOTS"):
            return
        probe = cursor.connection.cursor()
        probe.execute(
            "SELECT trx_isolation_level FROM information_schema.INNODB_TRX "
            "WHERE trx_mysql_thread_id = CONNECTION_ID()"
        )
        level = probe.fetchone()[0]
        first = params["rf_from_0"]
        with writer.connect() as other:  # the chunk is open: its INSERT ran, no COMMIT yet
            other.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
            try:
                touch = "UPDATE orders SET notes = notes WHERE id = :i"
                other.execute(sa.text(touch), {"i": first})
                other.execute(
                    sa.text("UPDATE order_items SET qty = qty WHERE order_id = :i"), {"i": first}
                )
                other.commit()
                seen.append((level, "went through"))
            except sa.exc.OperationalError as exc:
                seen.append((level, f"waited: {exc.orig}"))

    sa.event.listen(engine, "after_cursor_execute", after)
    result = rowferry.run(order_history.pushdown_migration, engine, chunk_size=50)
    assert result.done and result.chunks == 4
    assert seen == [("READ COMMITTED", "went through")] * 4
    with engine.connect() as conn:  # the pool's one connection, the one the trip used
        assert conn.exec_driver_sql("SELECT @@tx_isolation").scalar_one() == "REPEATABLE-READ"
    assert reference.snapshots(url) == expected
    engine.dispose()
    writer.dispose()


@pytest.mark.parametrize(
    ("log_bin", "binlog_format", "allowed"),
    [
        (0, "STATEMENT", True),
        (1, "ROW", True),
        (1, "MIXED", True),
        (1, "STATEMENT", False),
        ("ON", "statement", False),
        (None, None, True),
    ],
)
def test_read_committed_chunks_only_where_binary_logging_allows_them(
    log_bin: Any, binlog_format: Any, allowed: bool
) -> None:
    """InnoDB refuses a READ COMMITTED INSERT ... SELECT under statement-based binary logging
    (error 1665); this server logs nothing, so the rule is checked on its own here."""
    assert binlog_allows_consistent_reads(log_bin, binlog_format) is allowed
