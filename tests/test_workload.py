"""The reference workload, built on SQLite, MariaDB and PostgreSQL (the ``engine`` fixture)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from rowferry.demo import workload as wl
from rowferry.demo.workload import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    SOURCE_TABLES,
    TARGET_TABLE,
    WorkloadStats,
    build,
    create_source_schema,
    create_target_schema,
    populate,
    qualifying_count,
)

SMALL = 300
CHILD_TABLES = ("order_items", "prescriptions", "payments", "order_status_events")
ACCENTED = ("José Ñúñez", "Zoë Müller", "François Lefèvre", "Łukasz Wałęsa")
CJK = ("王小明", "山田太郎", "李华", "佐藤花子")

Rows = dict[str, list[tuple[Any, ...]]]


def table(name: str) -> sa.Table:
    return wl.metadata.tables[name]


def read_all(bind: sa.Engine) -> Rows:
    """Every source row, in id order, as Python values of the typed columns."""
    with bind.connect() as conn:
        return {
            name: [
                tuple(row) for row in conn.execute(sa.select(table(name)).order_by(sa.text("id")))
            ]
            for name in SOURCE_TABLES
        }


def count_rows(conn: sa.Connection, name: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table(name))).scalar_one())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rows]:
    """Seed 7, SMALL orders, built on SQLite with ``populate`` in tiny batches."""
    engine = sa.create_engine(f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.sqlite'}")
    with engine.begin() as conn:
        create_source_schema(conn)
        populate(conn, orders=SMALL, seed=7, batch=7)
    yield read_all(engine)
    engine.dispose()


def test_qualifying_count() -> None:
    assert qualifying_count(2700) == 1615
    assert qualifying_count(0) == 0
    assert qualifying_count(100_000) == 59_815
    assert FINAL_STATUSES == ("uncollected", "cancelled", "dispensed")
    assert OPEN_STATUSES == ("pending", "processing", "ready")
    assert TARGET_TABLE == "order_snapshots"


def test_production_size_counts_and_shape(engine: sa.Engine) -> None:
    stats = build(engine, orders=2700, seed=7)
    assert stats.orders == 2700
    assert stats.qualifying == 1615
    assert 850 <= stats.patients <= 950
    with engine.connect() as conn:
        counted = {name: count_rows(conn, name) for name in SOURCE_TABLES}
        statuses = Counter(conn.execute(sa.select(table("orders").c.status)).scalars())
    assert counted == {
        "patients": stats.patients,
        "orders": stats.orders,
        "order_items": stats.items,
        "prescriptions": stats.prescriptions,
        "payments": stats.payments,
        "order_status_events": stats.events,
    }
    assert sum(statuses[s] for s in FINAL_STATUSES) == 1615
    assert sum(statuses[s] for s in OPEN_STATUSES) == 2700 - 1615
    assert set(statuses) == set(FINAL_STATUSES + OPEN_STATUSES)
    assert 3.5 <= stats.items / stats.orders <= 4.5


def per_order(rows: list[tuple[Any, ...]]) -> dict[int, list[tuple[Any, ...]]]:
    grouped: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        grouped[row[1]].append(row)
    return grouped


def test_ids_gaps_and_references(engine: sa.Engine) -> None:
    build(engine, orders=2700, seed=7)
    rows = read_all(engine)
    order_ids = [row[0] for row in rows["orders"]]
    missing = order_ids[-1] - len(order_ids)
    assert 0.015 * order_ids[-1] < missing < 0.05 * order_ids[-1]  # about 3 % of ids deleted
    assert {row[1] for row in rows["orders"]} <= {row[0] for row in rows["patients"]}
    for name, low, high in (
        ("order_items", 1, 8),
        ("prescriptions", 0, 2),
        ("payments", 0, 2),
        ("order_status_events", 1, 5),
    ):
        ids = [row[0] for row in rows[name]]
        assert ids == list(range(1, len(ids) + 1))  # global ascending counter
        grouped = per_order(rows[name])
        assert set(grouped) <= set(order_ids)  # children of deleted orders went with them
        sizes = [len(grouped.get(order_id, [])) for order_id in order_ids]
        assert (min(sizes), max(sizes)) == (low, high)


def test_status_events_and_totals_are_consistent(engine: sa.Engine) -> None:
    build(engine, orders=SMALL, seed=7)
    rows = read_all(engine)
    events, items = per_order(rows["order_status_events"]), per_order(rows["order_items"])
    for order_id, _, status, total, _, created_at, updated_at in rows["orders"]:
        history = events[order_id]
        assert history[0][2] is None
        assert all(later[2] == earlier[3] for earlier, later in itertools.pairwise(history))
        assert history[-1][3] == status
        assert (history[0][4], history[-1][4]) == (created_at, updated_at)
        assert total == sum(qty * price for *_, qty, price in items[order_id])  # exact decimals


def test_same_seed_same_data_on_every_database(engine: sa.Engine, reference: Rows) -> None:
    build(engine, orders=SMALL, seed=7)
    rows = read_all(engine)
    for name in SOURCE_TABLES:
        assert rows[name] == reference[name], name
    first = rows["orders"][0]
    assert [type(value) for value in first[:4]] == [int, int, str, Decimal]
    assert isinstance(first[5], datetime)


def test_values_round_trip(engine: sa.Engine) -> None:
    build(engine, orders=2700, seed=7)
    rows = read_all(engine)
    patients, orders = rows["patients"], rows["orders"]
    names = {row[1] for row in patients}
    assert names & set(ACCENTED)
    assert names & set(CJK)
    for column in (2, 3, 4):  # email, dob, address
        assert any(row[column] is None for row in patients)
        assert any(row[column] is not None for row in patients)
    assert all(isinstance(row[3], date) for row in patients if row[3] is not None)
    assert any(row[3] is None for row in rows["prescriptions"])  # dosage
    assert any(row[4] is None for row in rows["payments"])  # paid_at
    stamps = [row[5] for row in orders] + [row[4] for row in rows["order_status_events"]]
    assert all(isinstance(s, datetime) and s.microsecond != 0 for s in stamps)
    prices = [row[5] for row in rows["order_items"]]
    assert all(isinstance(p, Decimal) and p == p.quantize(Decimal("0.01")) for p in prices)
    notes = [row[4] for row in orders if row[4] is not None]
    assert 0.05 * len(orders) < len(notes) < 0.4 * len(orders)
    long_notes = [note for note in notes if len(note) >= 2000]
    assert 15 <= len(long_notes) <= 40
    assert all(len(note.encode()) < 4096 for note in long_notes)


def test_accented_and_cjk_names_compare_on_the_server(engine: sa.Engine) -> None:
    build(engine, orders=2700, seed=7)
    patients = table("patients")
    with engine.connect() as conn:
        for names in (ACCENTED, CJK):
            query = sa.select(sa.func.count()).where(patients.c.name.in_(names))
            assert conn.execute(query).scalar_one() > 0


def test_build_twice_with_another_seed(engine: sa.Engine, reference: Rows) -> None:
    build(engine, orders=SMALL, seed=7)
    with engine.begin() as conn:
        conn.execute(sa.insert(table(TARGET_TABLE)).values(order_id=1, status="x", snapshot={}))
    url = engine.url.render_as_string(hide_password=False)
    stats = build(url, orders=SMALL, seed=8)  # drops and recreates everything
    rows = read_all(engine)
    assert rows["orders"] != reference["orders"]
    assert rows["order_items"] != reference["order_items"]
    assert len(rows["orders"]) == stats.orders == SMALL
    assert len(rows["order_items"]) == stats.items
    assert stats.qualifying == qualifying_count(SMALL)
    with engine.connect() as conn:
        assert count_rows(conn, TARGET_TABLE) == 0


def test_target_table_defaults_and_json(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        create_target_schema(conn)
        create_target_schema(conn)  # drop if exists, then create
        snapshot = {"id": 1, "total": "12.50", "patient": {"name": "王小明"}, "items": []}
        snapshots = table(TARGET_TABLE)
        conn.execute(sa.insert(snapshots).values(order_id=1, status="dispensed", snapshot=snapshot))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # order_id is unique
        conn.execute(sa.insert(snapshots).values(order_id=1, status="x", snapshot={}))
    with engine.connect() as conn:
        row = conn.execute(sa.select(snapshots)).one()
    assert (row.id, row.order_id, row.snapshot) == (1, 1, snapshot)
    now = datetime.now(UTC).replace(tzinfo=None)
    assert isinstance(row.captured_at, datetime)
    assert abs(row.captured_at - now) < timedelta(minutes=5)  # UTC on every dialect


def test_stats_type() -> None:
    stats = WorkloadStats(1, 1, 1, 1, 0, 0, 1)
    with pytest.raises(AttributeError):
        stats.orders = 2  # type: ignore[misc]
