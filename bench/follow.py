"""What a followed migration costs once it is caught up: ``python -m bench.follow``.

For each server: build the reference workload, run the live order-history migration
(``order-history-live``: it follows ``orders.updated_at``) until it is caught up, then time
trips of a schedule, in-process, each on a warm engine as a warm Lambda container runs them:

- idle trips, when nothing changed (their statements counted);
- busy trips, after the shop finished ``--changes`` open orders at random keys since the
  last trip (their times behind the watermark, so that the trip sees them).

Writes one Markdown report (``bench/follow-report.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

import rowferry
from harness.databases import create_database, drop_database
from rowferry import Changes
from rowferry.demo import order_history, workload

REPORT = Path(__file__).with_name("follow-report.md")
SERVERS = ("mariadb", "postgresql")
#: the live order-history migration, without a lag: a busy trip follows the changes made
#: just before it (what a trip costs does not depend on the lag)
MIGRATION = dataclasses.replace(order_history.live_migration, follow=Changes("updated_at", lag=0))


def _finish_open_orders(engine: sa.Engine, count: int, rng: random.Random, at: dt.datetime) -> int:
    """Move ``count`` open orders at random keys to a final status, changed at ``at``."""
    with engine.begin() as conn:
        open_ids = [
            int(i)
            for (i,) in conn.execute(
                sa.text("SELECT id FROM orders WHERE status IN :open").bindparams(
                    sa.bindparam("open", expanding=True)
                ),
                {"open": list(workload.OPEN_STATUSES)},
            )
        ]
        chosen = rng.sample(open_ids, min(count, len(open_ids)))
        for order_id in chosen:
            conn.execute(
                sa.text("UPDATE orders SET status = :s, updated_at = :at WHERE id = :id"),
                {"s": rng.choice(workload.FINAL_STATUSES), "at": at, "id": order_id},
            )
    return len(chosen)


def _trip(engine: sa.Engine) -> tuple[rowferry.RunResult, float, int]:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.perf_counter()
        result = rowferry.run(MIGRATION, engine, budget=rowferry.Budget(seconds=25))
        return result, time.perf_counter() - started, len(statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def measure(server: str, orders: int, trips: int, changes: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        url = create_database(server, Path(tmp))
        engine = sa.create_engine(url)
        try:
            workload.build(engine, orders=orders, seed=seed)
            backlog_started = time.perf_counter()
            while _trip(engine)[0].status != "caught_up":
                pass
            backlog = time.perf_counter() - backlog_started
            idle = [_trip(engine) for _ in range(trips)]
            busy = []
            for _ in range(trips):
                at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                _finish_open_orders(engine, changes, rng, at)
                busy.append(_trip(engine))
        finally:
            engine.dispose()
            drop_database(url)
    idle_ms = [s * 1000 for _, s, _ in idle]
    busy_ms = [s * 1000 for _, s, _ in busy]
    return [
        f"| {server} | {orders:,} | {backlog:.1f} s | {statistics.median(idle_ms):.1f} ms "
        f"(max {max(idle_ms):.1f}) | {max(n for _, _, n in idle)} | "
        f"{statistics.median(busy_ms):.1f} ms (max {max(busy_ms):.1f}) | "
        f"{min(r.rows_read for r, _, _ in busy)}-{max(r.rows_read for r, _, _ in busy)} |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--trips", type=int, default=20, help="idle trips, then busy trips")
    parser.add_argument("--changes", type=int, default=50, help="orders finished per busy trip")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    for server in args.servers.split(","):
        rows += measure(server, args.orders, args.trips, args.changes, args.seed)
        print(rows[-1], flush=True)
    load_after = os.getloadavg()
    command = (
        f"python -m bench.follow --orders {args.orders} --servers {args.servers} "
        f"--trips {args.trips} --changes {args.changes} --seed {args.seed}"
    )
    args.report.write_text(
        "# Following a live source: the cost of a trip once caught up\n\n"
        f"`{command}` on {platform.node()} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}), load average {load_before[0]:.2f} before and "
        f"{load_after[0]:.2f} after.\n\n"
        "The migration is `order-history-live` (the reference snapshot job, following "
        "`orders.updated_at`), with a lag of 0 s. The backlog runs in "
        "trips of 25 s until the first is caught up; then each trip runs in-process on the "
        "same engine (a warm Lambda container). An idle trip follows no change; a busy trip "
        f"follows {args.changes} orders finished at random keys since the last one. "
        "Statements: what the trip sends, counted at the cursor.\n\n"
        "| server | orders | backlog | idle trip (median) | idle statements | busy trip "
        "(median) | rows per busy trip |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
