"""The approaches the speed comparison times, each a function of an engine and a time cap.

- ``naive``: attempt 3 of SCENARIO.md (OFFSET pages of 100 orders, relations loaded per order,
  one INSERT and one COMMIT per snapshot); stops before the next order once the cap is
  reached (``naive-1ms`` is the same code behind a proxy adding 1 ms per round trip, which the
  driver sets up);
- ``handmade``: keyset chunks of 1,000, one query per relation per chunk, one multi-row INSERT
  and one COMMIT per chunk, no checkpoint and no lease;
- ``limit``: one server-side ``INSERT … SELECT`` for every snapshot (bench/limit_sql.py);
- ``limit-chunked``: the same statement per key range of 1,000 finished orders, one COMMIT each;
- ``rowferry``: ``rowferry.run(order_history.migration, engine)``, its defaults;
- ``rowferry-pushdown``: ``rowferry.run(order_history.pushdown_migration, engine)``, when the
  engine has it (``NotAvailable`` otherwise);
- ``rowferry-mysqlclient``: ``rowferry`` on the optional C driver (MySQL/MariaDB only).

The rowferry approaches get rowferry's own engine (``rowferry.dialects.connect.create_engine``), the
scripts SQLAlchemy's defaults; see bench/compare_one.py.

An approach returns True when it stopped because of the cap (only naive has one).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

import rowferry
from bench import limit_sql
from rowferry import documents
from rowferry.demo import order_history, workload
from rowferry.engine import gc_tuning

Approach = Callable[[sa.Engine, float | None], bool]
Row = dict[str, Any]
CHUNK = 1000
PAGE = 100


class NotAvailable(Exception):
    """The approach cannot run with this rowferry (reported as "not available")."""


TABLES = workload.metadata.tables


def _rows(
    conn: sa.Connection, stmt: sa.Executable, params: dict[str, Any] | None = None
) -> list[Row]:
    return [dict(r._mapping) for r in conn.execute(stmt, params or {})]


def _finished() -> sa.ColumnElement[bool]:
    return TABLES["orders"].c.status.in_(workload.FINAL_STATUSES)


def _children(table: str) -> sa.Select[Any]:
    """The rows of a child table for order ``:i``, by id."""
    t = TABLES[table]
    return sa.select(t).where(t.c.order_id == sa.bindparam("i")).order_by(t.c.id)


def naive(engine: sa.Engine, cap: float | None) -> bool:
    """OFFSET pages of 100; relations per order; an INSERT and a COMMIT per snapshot.

    Queries go through SQLAlchemy Core on the workload's tables (as an ORM would), so that values
    come back typed (decimals and datetimes on SQLite too).
    """
    deadline = None if cap is None else time.perf_counter() + cap
    orders, patients = TABLES["orders"], TABLES["patients"]
    page_sql = sa.select(orders).where(_finished()).order_by(orders.c.id)
    patient_sql = sa.select(patients).where(patients.c.id == sa.bindparam("i"))
    children = {name: _children(table) for name, table in limit_sql.RELATIONS.items()}
    with engine.connect() as conn:
        for page in range(10**9):
            rows = _rows(conn, page_sql.limit(PAGE).offset(page * PAGE))
            if not rows:
                break
            for order in rows:
                if deadline is not None and time.perf_counter() >= deadline:
                    return True
                found = _rows(conn, patient_sql, {"i": order["patient_id"]})
                related: Row = {"patient": found[0] if found else None}
                for name, stmt in children.items():
                    related[name] = _rows(conn, stmt, {"i": order["id"]})
                _insert_snapshot(conn, order, related)
                conn.commit()
    return False


def _insert_snapshot(conn: sa.Connection, order: Row, related: Row) -> None:
    row = order_history.snapshot(order, related)
    conn.execute(
        sa.text("INSERT INTO order_snapshots (order_id, status, snapshot) VALUES (:o, :s, :d)"),
        {"o": row["order_id"], "s": row["status"], "d": documents.dumps(row["snapshot"])},
    )


def handmade(
    engine: sa.Engine, cap: float | None, after_chunk: Callable[[int], None] | None = None
) -> bool:
    """Keyset chunks of 1,000; one IN query per relation; one multi-row INSERT per chunk.
    ``after_chunk(chunks done)`` runs after each COMMIT (handmade-gc)."""
    orders = TABLES["orders"]
    chunk_sql = (
        sa.select(orders)
        .where(_finished(), orders.c.id > sa.bindparam("last"))
        .order_by(orders.c.id)
        .limit(CHUNK)
    )
    last, chunks = 0, 0
    with engine.connect() as conn:
        while rows := _rows(conn, chunk_sql, {"last": last}):
            ids = [o["id"] for o in rows]
            patients = {
                p["id"]: p for p in _in(conn, "patients", "id", {o["patient_id"] for o in rows})
            }
            children = {
                name: _grouped(_in(conn, table, "order_id", ids))
                for name, table in limit_sql.RELATIONS.items()
            }
            values = []
            for order in rows:
                related: Row = {"patient": patients.get(order["patient_id"])}
                related |= {name: children[name].get(order["id"], []) for name in children}
                row = order_history.snapshot(order, related)
                values.append((row["order_id"], row["status"], documents.dumps(row["snapshot"])))
            _insert_many(conn, values)
            conn.commit()
            last = ids[-1]
            chunks += 1
            if after_chunk is not None:
                after_chunk(chunks)
    return False


def handmade_gc(engine: sa.Engine, cap: float | None) -> bool:
    """handmade under rowferry's garbage-collector setting (:mod:`rowferry.engine.gc_tuning`: the
    higher threshold, and its collection after each chunk): how much of rowferry's lead over
    handmade that setting alone would give a script."""
    after = gc_tuning.AfterChunks()
    with gc_tuning.fewer_collections():
        return handmade(engine, cap, lambda chunks: after.collect())


def _in(conn: sa.Connection, table: str, column: str, keys: Any) -> list[Row]:
    t = TABLES[table]
    stmt = sa.select(t).where(t.c[column].in_(sorted(keys))).order_by(t.c[column], t.c.id)
    return _rows(conn, stmt)


def _grouped(rows: list[Row]) -> dict[int, list[Row]]:
    groups: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row["order_id"]].append(row)
    return groups


def _insert_many(conn: sa.Connection, values: Sequence[tuple[Any, ...]]) -> None:
    """One INSERT with a VALUES row per snapshot (executemany would be a statement per row on
    PostgreSQL with psycopg)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    rows = ", ".join([f"({mark}, {mark}, {mark})"] * len(values))
    params = tuple(v for row in values for v in row)
    conn.exec_driver_sql(
        f"INSERT INTO order_snapshots (order_id, status, snapshot) VALUES {rows}", params
    )


def limit(engine: sa.Engine, cap: float | None) -> bool:
    """Every snapshot in one server-side INSERT … SELECT, one COMMIT."""
    with engine.begin() as conn:
        conn.execute(sa.text(limit_sql.insert_select(engine.dialect, key_range=False)))
    return False


def limit_chunked(engine: sa.Engine, cap: float | None) -> bool:
    """The same INSERT … SELECT per key range of 1,000 finished orders, committed per range."""
    bound_sql = sa.text(limit_sql.next_bound_sql(CHUNK))
    insert_sql = sa.text(limit_sql.insert_select(engine.dialect, key_range=True))
    last = 0
    with engine.connect() as conn:
        while (hi := conn.execute(bound_sql, {"last": last}).scalar()) is not None:
            conn.execute(insert_sql, {"lo": last, "hi": hi})
            conn.commit()
            last = hi
    return False


def with_rowferry(engine: sa.Engine, cap: float | None) -> bool:
    result = rowferry.run(order_history.migration, engine)
    if not result.done:
        raise RuntimeError(f"rowferry stopped: {result.reason}")
    return False


def with_rowferry_pushdown(engine: sa.Engine, cap: float | None) -> bool:
    migration = getattr(order_history, "pushdown_migration", None)
    if migration is None:
        raise NotAvailable("rowferry.demo.order_history has no pushdown_migration yet")
    result = rowferry.run(migration, engine)
    if not result.done:
        raise RuntimeError(f"rowferry stopped: {result.reason}")
    return False


APPROACHES: dict[str, Approach] = {
    "naive": naive,
    "naive-1ms": naive,
    "handmade": handmade,
    "handmade-gc": handmade_gc,
    "limit": limit,
    "limit-chunked": limit_chunked,
    "rowferry": with_rowferry,
    "rowferry-pushdown": with_rowferry_pushdown,
    "rowferry-mysqlclient": with_rowferry,
}
#: Approaches that stop at the time cap (``--naive-cap``).
CAPPED = frozenset({"naive", "naive-1ms"})
#: Approaches run through a latency proxy adding this many ms per round trip.
LATENCY_MS = {"naive-1ms": 1.0}
