"""The demo: build the reference workload, run the order-history migration as time-boxed trips,
check the result. ``rowferry demo`` is a thin wrapper around :func:`run_demo`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import documents, state
from ..connections import connect, create_engine, describe
from ..engine import Budget, ChunkDone, RunResult, run
from . import workload
from .order_history import migration, snapshot

DEFAULT_URL = "sqlite:///rowferry-demo.sqlite"


@dataclass
class DemoReport:
    url: str
    orders: int
    qualifying: int
    build_seconds: float
    trips: list[RunResult] = field(default_factory=list)
    migrate_seconds: float = 0.0
    snapshots: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def run_demo(
    url: str = DEFAULT_URL,
    orders: int = 2700,
    *,
    seed: int = 7,
    trip_seconds: float = 0.25,
    chunk_size: int = 200,
    on_built: Callable[[DemoReport], None] | None = None,
    on_trip: Callable[[RunResult], None] | None = None,
    on_chunk: Callable[[ChunkDone], None] | None = None,
) -> DemoReport:
    """Build ``orders`` reference orders at ``url``, migrate them in trips, check the snapshots."""
    engine = create_engine(url, must_exist=False)
    try:
        t0 = time.monotonic()
        stats = workload.build(engine, orders=orders, seed=seed)
        with connect(engine) as conn:
            state.ensure_table(conn)
            state.reset(conn, migration.name)
        built = time.monotonic() - t0
        report = DemoReport(describe(engine.url), stats.orders, stats.qualifying, built)
        if on_built is not None:
            on_built(report)
        t1 = time.monotonic()
        while not report.trips or not report.trips[-1].done:
            result = run(
                migration,
                engine,
                budget=Budget(seconds=trip_seconds),
                chunk_size=chunk_size,
                on_chunk=on_chunk,
            )
            report.trips.append(result)
            if on_trip is not None:
                on_trip(result)
        report.migrate_seconds = time.monotonic() - t1
        _check(engine, report)
        return report
    finally:
        engine.dispose()


def _check(engine: sa.Engine, report: DemoReport) -> None:
    """Every qualifying order has exactly one snapshot, equal to what the transform gives."""
    meta = sa.MetaData()
    orders = sa.Table("orders", meta, autoload_with=engine)
    snaps = sa.Table(workload.TARGET_TABLE, meta, autoload_with=engine)
    final = orders.c.status.in_(workload.FINAL_STATUSES)
    with connect(engine) as conn:
        report.snapshots = conn.execute(sa.select(sa.func.count()).select_from(snaps)).scalar_one()
        distinct = conn.execute(
            sa.select(sa.func.count(sa.distinct(snaps.c.order_id)))
        ).scalar_one()
        missing = conn.execute(
            sa.select(sa.func.count())
            .select_from(orders)
            .where(final)
            .where(~sa.exists().where(snaps.c.order_id == orders.c.id))
        ).scalar_one()
        first = conn.execute(sa.select(snaps).order_by(snaps.c.order_id).limit(1)).first()
    if report.snapshots != report.qualifying:
        report.problems.append(f"{report.snapshots} snapshots for {report.qualifying} orders")
    if distinct != report.snapshots:
        report.problems.append(f"{report.snapshots - distinct} duplicate snapshots")
    if missing:
        report.problems.append(f"{missing} qualifying orders have no snapshot")
    if first is not None and not _matches(engine, first._mapping):
        report.problems.append(f"snapshot of order {first.order_id} differs from the transform")


def _matches(engine: sa.Engine, stored: sa.RowMapping) -> bool:
    """Recompute one order's snapshot through the engine's own reader and compare as JSON."""
    from ..dialects import dialect_for
    from ..reading import ChunkReader
    from ..schema import resolve_source

    with connect(engine) as conn:
        plan = resolve_source(conn, migration)
        chunk = ChunkReader(plan, dialect_for(conn)).read(conn, (stored["order_id"] - 1,), 1)
    expected = snapshot(chunk.rows[0], chunk.related[0])["snapshot"]
    value = stored["snapshot"]
    got = documents.loads(value) if isinstance(value, str) else value
    return bool(documents.loads(documents.dumps(expected)) == documents.loads(documents.dumps(got)))
