"""Helpers shared by the tests: the reference workload, its expected snapshots, target dumps."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from rowferry import documents
from rowferry.demo import workload


def build(url: str, orders: int = 300, seed: int = 7) -> workload.WorkloadStats:
    engine = sa.create_engine(url)
    try:
        return workload.build(engine, orders=orders, seed=seed)
    finally:
        engine.dispose()


def _rows(conn: sa.Connection, table: sa.Table) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(*table.primary_key))]


def expected_snapshots(url: str) -> dict[int, Any]:
    """Every finished order's snapshot, computed from whole-table reads (not rowferry's reader)."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    with engine.connect() as conn:
        tables = {n: sa.Table(n, meta, autoload_with=conn) for n in workload.SOURCE_TABLES}
        data = {n: _rows(conn, t) for n, t in tables.items()}
    engine.dispose()
    patients = {p["id"]: p for p in data["patients"]}
    children: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for name, table in [
        ("items", "order_items"),
        ("prescriptions", "prescriptions"),
        ("payments", "payments"),
        ("events", "order_status_events"),
    ]:
        grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in data[table]:
            grouped[row["order_id"]].append(row)
        children[name] = grouped
    expected = {}
    for order in data["orders"]:
        if order["status"] not in workload.FINAL_STATUSES:
            continue
        doc = {**order, "patient": patients.get(order["patient_id"])}
        doc.update({name: grouped.get(order["id"], []) for name, grouped in children.items()})
        expected[order["id"]] = normalise(documents.dumps(doc))
    return expected


def normalise(value: Any) -> Any:
    """A parsed JSON document with decimals as their exact text, for field-by-field equality."""
    if isinstance(value, str):
        value = documents.loads(value)
    if isinstance(value, dict):
        return {k: normalise_value(v) for k, v in value.items()}
    return normalise_value(value)


def normalise_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: normalise_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_value(v) for v in value]
    return value


def snapshots(url: str, table: str = "order_snapshots") -> dict[int, Any]:
    """The target's snapshots by order id; fails on a duplicate order id."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    with engine.connect() as conn:
        snaps = sa.Table(table, meta, autoload_with=conn)
        stmt = sa.select(snaps.c.order_id, snaps.c.status, sa.cast(snaps.c.snapshot, sa.Text))
        rows = conn.execute(stmt.order_by(snaps.c.order_id)).all()
    engine.dispose()
    found: dict[int, Any] = {}
    for order_id, status, text in rows:
        assert order_id not in found, f"order {order_id} has two snapshots"
        doc = normalise(text)
        assert doc["status"] == status
        found[order_id] = doc
    return found


def start_over(url: str, name: str = "order-history") -> None:
    """Empty order_snapshots and forget the migration's progress and quarantine (creating
    rowferry's tables if they are not there yet)."""
    from rowferry.state import store

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM order_snapshots")
    with engine.connect() as conn:
        store.ensure_table(conn)
        store.reset(conn, name)
    engine.dispose()
