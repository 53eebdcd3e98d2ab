"""Correctness of a result: the target's snapshots against the reference snapshots.

Documents are compared as ``harness.reference.normalise`` makes them (parsed JSON, decimals as their
exact text), through a digest of each (SHA-1 of the sorted-key JSON of the normalised document),
so that the expected side of a large workload fits in memory. Up to ``WHOLE_UP_TO`` orders both
sides come from ``harness.reference`` itself (``expected_snapshots``, ``snapshots``, which hold
whole tables in memory); above, the same documents are built and read range by range of order
ids (checked equal to the reference's at 20,000 orders on the three databases), so that
1,000,000 orders do not need gigabytes.

A complete run is correct when every finished order has exactly one snapshot and every snapshot
equals its expected document; a run stopped at its time cap when each snapshot it wrote does.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from harness import reference
from rowferry import documents
from rowferry.demo import workload

#: Workloads of more orders than this are checked range by range.
WHOLE_UP_TO = 100_000
#: Order ids per range when checking range by range.
RANGE = 20_000
RELATIONS = {
    "items": "order_items",
    "prescriptions": "prescriptions",
    "payments": "payments",
    "events": "order_status_events",
}


def digest(document: Any) -> bytes:
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(text.encode()).digest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    written: int
    text: str


def expected_digests(url: str, orders: int) -> dict[int, bytes]:
    """The digest of every finished order's expected snapshot, by order id."""
    if orders <= WHOLE_UP_TO:
        return {k: digest(v) for k, v in reference.expected_snapshots(url).items()}
    return dict(_expected_by_range(url))


def check(url: str, orders: int, expected: dict[int, bytes], capped: bool) -> Verdict:
    """Compare the target's snapshots with ``expected`` (only the rows written when ``capped``)."""
    try:
        found = _found_digests(url, orders)
    except AssertionError as exc:  # a duplicate order id or a status not matching its document
        return Verdict(False, 0, f"NO: {exc}")
    wrong = sorted(k for k, d in found.items() if expected.get(k) != d)
    missing = 0 if capped else len(expected.keys() - found.keys())
    if wrong or missing:
        first = f", first wrong order {wrong[0]}" if wrong else ""
        text = f"NO: {len(wrong)} wrong or unexpected, {missing} missing{first}"
        return Verdict(False, len(found), text)
    if capped:
        return Verdict(True, len(found), f"yes ({len(found):,} written, all checked)")
    return Verdict(True, len(found), "yes")


def _found_digests(url: str, orders: int) -> dict[int, bytes]:
    if orders <= WHOLE_UP_TO:
        return {k: digest(v) for k, v in reference.snapshots(url).items()}
    found: dict[int, bytes] = {}
    for order_id, status, text in _stream_target(url):
        assert order_id not in found, f"order {order_id} has two snapshots"
        doc = reference.normalise(text)
        assert doc["status"] == status, f"order {order_id}: status column is not the document's"
        found[order_id] = digest(doc)
    return found


def _stream_target(url: str) -> Iterator[tuple[int, str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            snaps = sa.Table(workload.TARGET_TABLE, sa.MetaData(), autoload_with=conn)
            stmt = sa.select(snaps.c.order_id, snaps.c.status, sa.cast(snaps.c.snapshot, sa.Text))
            result = conn.execution_options(yield_per=5000).execute(stmt.order_by(snaps.c.order_id))
            for order_id, status, text in result:
                yield int(order_id), str(status), str(text)
    finally:
        engine.dispose()


def _expected_by_range(url: str) -> Iterator[tuple[int, bytes]]:
    """What ``reference.expected_snapshots`` computes, ``RANGE`` order ids at a time."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    try:
        with engine.connect() as conn:
            tables = {n: sa.Table(n, meta, autoload_with=conn) for n in workload.SOURCE_TABLES}
            top = conn.execute(sa.select(sa.func.max(tables["orders"].c.id))).scalar() or 0
            for lo in range(0, top, RANGE):
                yield from _expected_range(conn, tables, lo, lo + RANGE)
    finally:
        engine.dispose()


def _expected_range(
    conn: sa.Connection, tables: dict[str, sa.Table], lo: int, hi: int
) -> Iterator[tuple[int, bytes]]:
    orders = tables["orders"]
    in_range = orders.c.id.between(lo + 1, hi)
    rows = [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(orders)
            .where(in_range, orders.c.status.in_(workload.FINAL_STATUSES))
            .order_by(orders.c.id)
        )
    ]
    if not rows:
        return
    patients_t = tables["patients"]
    patient_ids = sorted({o["patient_id"] for o in rows})
    patients = {
        p.id: dict(p._mapping)
        for p in conn.execute(sa.select(patients_t).where(patients_t.c.id.in_(patient_ids)))
    }
    children: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for name, table_name in RELATIONS.items():
        table = tables[table_name]
        grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
        stmt = sa.select(table).where(table.c.order_id.between(lo + 1, hi)).order_by(table.c.id)
        for row in conn.execute(stmt):
            grouped[row.order_id].append(dict(row._mapping))
        children[name] = grouped
    for order in rows:
        doc = {**order, "patient": patients.get(order["patient_id"])}
        doc.update({name: grouped.get(order["id"], []) for name, grouped in children.items()})
        yield order["id"], digest(reference.normalise(documents.dumps(doc)))
