"""The founding migration on a live database: ``python -m tests.live --url URL [options]``.

Builds the pharmacy workload (:mod:`rowferry.demo.workload`), then, for ``--seconds``, changes
it as a shop does while ``rowferry run`` trips of the live order-history migration
(``order-history-live``: it follows the orders' ``updated_at`` after its backlog; ``--name
order-history`` runs the one that walks the key once) start every ``--interval`` seconds, some
of them killed with SIGKILL at a random instant:

- open orders anywhere in the key range (low keys, which the cursor passed long ago, as often
  as any) reach a final status, with their status event and a new ``updated_at``;
- new orders arrive, open or already final;
- some final orders move to another final status (a collected order refunded as cancelled).

The shop sets ``updated_at`` from its own clock (UTC), as an application does. When it stops,
the lag passes, then trips run until one ends ``done`` or ``caught_up``, and the history is
compared with the source, in plain SQL: every order in a final status must have exactly one
snapshot, with its current status (the live migration replaces a snapshot when its order moves
to another final status), and nothing else may be there. It prints the orders that never
reached the history, the snapshots whose status is no longer the order's, and the extra ones,
and exits 1 when any is found.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from rowferry.demo import order_history, workload
from rowferry.migration.follow import Changes as FollowChanges

MIGRATION_FILE = Path(workload.__file__).with_name("order_history.py")
LIVE = order_history.live_migration
FINAL = workload.FINAL_STATUSES
OPEN = workload.OPEN_STATUSES


@dataclass
class Changes:
    """What the shop did while the trips ran."""

    finished: int = 0
    arrived: int = 0
    moved: int = 0
    errors: list[str] = field(default_factory=list)


class Shop(threading.Thread):
    """Changes the source at ``rate`` changes a second until stopped."""

    def __init__(self, url: str, rate: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url)
        self.rate = rate
        self.rng = random.Random(seed)
        self.changes = Changes()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(1 / self.rate):
            try:
                with self.engine.begin() as conn:
                    self._change(conn)
            except sa.exc.DBAPIError as exc:  # a deadlock with a trip: the shop tries again
                self.changes.errors.append(str(exc.orig)[:200])

    def _change(self, conn: sa.Connection) -> None:
        roll = self.rng.random()
        if roll < 0.7:
            self._finish(conn)
        elif roll < 0.9:
            self._arrive(conn)
        else:
            self._move(conn)

    def _event(self, conn: sa.Connection, order_id: int, old: str | None, new: str) -> None:
        next_id = conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) + 1 FROM order_status_events")
        conn.execute(
            sa.text(
                "INSERT INTO order_status_events (id, order_id, from_status, to_status, at) "
                "VALUES (:id, :order_id, :old, :new, CURRENT_TIMESTAMP)"
            ),
            {"id": next_id.scalar_one(), "order_id": order_id, "old": old, "new": new},
        )

    def _pick(self, conn: sa.Connection, statuses: tuple[str, ...]) -> tuple[int, str] | None:
        top = conn.exec_driver_sql("SELECT MAX(id) FROM orders").scalar_one()
        start = self.rng.randint(1, top)
        found = conn.execute(
            sa.text(
                "SELECT id, status FROM orders WHERE id >= :start AND status IN :statuses "
                "ORDER BY id LIMIT 1"
            ).bindparams(sa.bindparam("statuses", expanding=True)),
            {"start": start, "statuses": list(statuses)},
        ).first()
        return None if found is None else (int(found[0]), str(found[1]))

    def _set_status(self, conn: sa.Connection, order_id: int, old: str, new: str) -> None:
        conn.execute(
            sa.text(
                "UPDATE orders SET status = :new, updated_at = :now "
                "WHERE id = :id AND status = :old"
            ),
            {"new": new, "id": order_id, "old": old, "now": _utc_now()},
        )
        self._event(conn, order_id, old, new)

    def _finish(self, conn: sa.Connection) -> None:
        found = self._pick(conn, OPEN)
        if found is not None:
            self._set_status(conn, found[0], found[1], self.rng.choice(FINAL))
            self.changes.finished += 1

    def _move(self, conn: sa.Connection) -> None:
        found = self._pick(conn, FINAL)
        if found is not None:
            other = self.rng.choice([s for s in FINAL if s != found[1]])
            self._set_status(conn, found[0], found[1], other)
            self.changes.moved += 1

    def _arrive(self, conn: sa.Connection) -> None:
        new_id = conn.exec_driver_sql("SELECT MAX(id) + 1 FROM orders").scalar_one()
        status = self.rng.choice(OPEN + FINAL)
        template = conn.exec_driver_sql("SELECT MIN(id) FROM orders").scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO orders (id, patient_id, status, total, notes, created_at, "
                "updated_at) SELECT :id, patient_id, :status, total, notes, :now, :now "
                "FROM orders WHERE id = :template"
            ),
            {"id": new_id, "status": status, "template": template, "now": _utc_now()},
        )
        self._event(conn, new_id, None, status)
        self.changes.arrived += 1


def _utc_now() -> dt.datetime:
    """The application's clock: UTC, without a zone, as the workload's times are."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class Trips:
    started: int = 0
    killed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def _trip(url: str, budget: float, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rowferry",
            "run",
            str(MIGRATION_FILE),
            "--name",
            name,
            "--source",
            url,
            "--time-budget",
            f"{budget}s",
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _schedule(
    url: str, name: str, seconds: float, interval: float, kill_share: float, rng: random.Random
) -> Trips:
    """Start a trip every ``interval`` s for ``seconds`` s (one at a time, as a scheduler whose
    runs do not overlap would); kill ``kill_share`` of them at a random instant."""
    trips = Trips()
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        started = time.monotonic()
        child = _trip(url, interval, name)
        trips.started += 1
        if rng.random() < kill_share:
            time.sleep(rng.uniform(0, interval))
            child.send_signal(signal.SIGKILL)
            trips.killed += 1
        status = child.wait()
        trips.statuses[status] = trips.statuses.get(status, 0) + 1
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return trips


def finish_trips(url: str, name: str, limit: int = 100) -> int:
    """Run trips until one says done or caught up; return how many ran."""
    for n in range(1, limit + 1):
        if _trip(url, 30, name).wait() == 0:
            return n
    raise SystemExit(f"the migration was not done after {limit} trips")


@dataclass
class Comparison:
    final: int
    snapshots: int
    missing: list[int]
    stale: list[int]
    extra: list[int]
    duplicated: list[int]


def compare(url: str) -> Comparison:
    """The history against the source, in plain SQL."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        statuses = {
            int(i): str(s) for i, s in conn.exec_driver_sql("SELECT id, status FROM orders")
        }
        rows = conn.exec_driver_sql("SELECT order_id, status FROM order_snapshots").all()
    engine.dispose()
    final = {i for i, s in statuses.items() if s in FINAL}
    seen: dict[int, int] = {}
    for order_id, _ in rows:
        seen[int(order_id)] = seen.get(int(order_id), 0) + 1
    return Comparison(
        final=len(final),
        snapshots=len(rows),
        missing=sorted(final - set(seen)),
        stale=sorted(int(i) for i, s in rows if int(i) in final and statuses[int(i)] != s),
        extra=sorted(set(seen) - final),
        duplicated=sorted(i for i, n in seen.items() if n > 1),
    )


@dataclass
class Soak:
    """What one soak did and found."""

    changes: Changes
    trips: Trips
    finishing_trips: int
    found: Comparison
    seconds: float

    @property
    def exact(self) -> bool:
        found = self.found
        return not (found.missing or found.stale or found.extra or found.duplicated)


def soak(
    url: str,
    *,
    name: str = LIVE.name,
    orders: int = 20_000,
    rate: float = 20.0,
    seconds: float = 60.0,
    interval: float = 1.0,
    kill_share: float = 0.2,
    seed: int = 1,
) -> Soak:
    """Build the workload, change it while scheduled trips run, let the lag pass, finish."""
    started = time.monotonic()
    workload.build(url, orders=orders, seed=seed)
    shop = Shop(url, rate, seed)
    shop.start()
    trips = _schedule(url, name, seconds, interval, kill_share, random.Random(seed))
    shop.stopping.set()
    shop.join()
    shop.engine.dispose()
    if name == LIVE.name:
        assert isinstance(LIVE.follow, FollowChanges)
        time.sleep(LIVE.follow.lag)  # the shop's last changes fall behind the watermark
    after = finish_trips(url, name)
    return Soak(shop.changes, trips, after, compare(url), time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.live", description=__doc__)
    parser.add_argument("--url", required=True, help="the source (and target) database")
    parser.add_argument("--name", default=LIVE.name, help="the migration of order_history.py")
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=20.0, help="changes a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between trips")
    parser.add_argument("--kill-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    done = soak(
        args.url,
        name=args.name,
        orders=args.orders,
        rate=args.rate,
        seconds=args.seconds,
        interval=args.interval,
        kill_share=args.kill_share,
        seed=args.seed,
    )
    changes, trips, found = done.changes, done.trips, done.found
    print(
        f"{args.name}: {args.orders:,} orders; the shop finished {changes.finished:,}, added "
        f"{changes.arrived:,} and moved {changes.moved:,} between final statuses in "
        f"{args.seconds:g} s ({len(changes.errors)} changes failed); {trips.started} trips "
        f"({trips.killed} killed, exit statuses {dict(sorted(trips.statuses.items()))}), then "
        f"{done.finishing_trips} to finish; {done.seconds:.0f} s in all"
    )
    print(
        f"final orders {found.final:,}, snapshots {found.snapshots:,}: missing "
        f"{len(found.missing):,}, stale status {len(found.stale):,}, extra {len(found.extra):,}, "
        f"duplicated {len(found.duplicated):,}"
    )
    for label, keys in (("missing", found.missing), ("stale", found.stale), ("extra", found.extra)):
        if keys:
            print(f"  {label}: {keys[:20]}{' ...' if len(keys) > 20 else ''}")
    return 0 if done.exact else 1


if __name__ == "__main__":
    sys.exit(main())
