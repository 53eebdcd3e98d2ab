"""The demo: build the reference workload, run the order-history migration as time-boxed trips,
then check the result with :func:`rowferry.verify.check.verify` (every snapshot recomputed).
``rowferry demo`` is a thin wrapper around :func:`run_demo`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from rowferry.demo import workload
from rowferry.demo.order_history import migration
from rowferry.dialects.connect import connect, create_engine, describe
from rowferry.engine.run import Budget, ChunkDone, RunResult, run
from rowferry.errors import ConfigError
from rowferry.state import store
from rowferry.verify.check import verify
from rowferry.verify.report import VerifyReport

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
    verify: VerifyReport | None = None
    verify_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def run_demo(
    url: str = DEFAULT_URL,
    orders: int = 2700,
    *,
    seed: int = 7,
    trip_seconds: float = 0.25,
    trip_chunks: int = 3,
    chunk_size: int = 200,
    on_built: Callable[[DemoReport], None] | None = None,
    on_trip: Callable[[RunResult], None] | None = None,
    on_chunk: Callable[[ChunkDone], None] | None = None,
) -> DemoReport:
    """Build ``orders`` reference orders at ``url``, migrate them in trips, check the snapshots.

    Each trip stops at ``trip_seconds`` or after ``trip_chunks`` chunks, whichever comes first:
    the chunk limit makes a fast machine show several trips too.
    """
    engine = create_engine(url, must_exist=False)
    try:
        t0 = time.monotonic()
        stats = workload.build(engine, orders=orders, seed=seed)
        with connect(engine) as conn:
            store.ensure_table(conn)
            store.reset(conn, migration.name)
        built = time.monotonic() - t0
        report = DemoReport(describe(engine.url), stats.orders, stats.qualifying, built)
        if on_built is not None:
            on_built(report)
        t1 = time.monotonic()
        while not report.trips or not report.trips[-1].done:
            result = run(
                migration,
                engine,
                budget=Budget(seconds=trip_seconds, max_chunks=trip_chunks),
                chunk_size=chunk_size,
                on_chunk=on_chunk,
            )
            report.trips.append(result)
            if on_trip is not None:
                on_trip(result)
            _check_progress(report.trips, trip_seconds)
        report.migrate_seconds = time.monotonic() - t1
        _verify(engine, report)
        return report
    finally:
        engine.dispose()


#: trips in a row that commit nothing before the demo gives up
_IDLE_TRIPS = 3


def _check_progress(trips: list[RunResult], trip_seconds: float) -> None:
    """Stop the demo, instead of looping, when its trips are too short to commit a chunk."""
    recent = trips[-_IDLE_TRIPS:]
    if len(recent) == _IDLE_TRIPS and not any(t.done or t.rows_read for t in recent):
        raise ConfigError(
            f"{_IDLE_TRIPS} trips of {trip_seconds:g} s in a row committed nothing "
            f"({recent[-1].reason}): starting a trip takes longer than that here; "
            "give the demo a larger --trip-budget"
        )


def _verify(engine: sa.Engine, report: DemoReport) -> None:
    """Every finished order has exactly one snapshot, equal to what the transform gives now."""
    t0 = time.monotonic()
    found = verify(migration, engine, all_rows=True)
    report.verify, report.verify_seconds = found, time.monotonic() - t0
    report.snapshots = found.target_rows
    if not found.ok:
        report.problems.append("the snapshots do not match the orders (see the verify lines)")
