"""Let a server finish its background work before the next approach is timed.

Loading a million orders, or deleting the 600,000 snapshots the last approach wrote, leaves the
server work to do after the statements have returned. InnoDB purges deleted rows (its history
list) and flushes dirty pages in the background; timed while that runs, an approach pays for its
predecessor: on freshly loaded MariaDB every approach after the first runs markedly slower
than on the same data once InnoDB has caught up. PostgreSQL here runs without autovacuum, so
the deleted snapshots stay as dead rows until a VACUUM.

:func:`settle` waits for MariaDB until the history list is short and few pages are dirty (at
most ``limit`` seconds; an idle InnoDB leaves pages dirty for good, so for the wait it sets
``innodb_max_dirty_pages_pct`` to 0, which makes it flush them, and then puts the old value
back), and on PostgreSQL vacuums the target table and checkpoints. It returns the seconds it
waited and what it saw, for the report.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import sqlalchemy as sa

#: InnoDB is settled when fewer undo logs than this wait for purge ...
HISTORY_SETTLED = 1000
#: ... and at most this share of the buffer pool is dirty
DIRTY_SETTLED = 0.01


@dataclass(frozen=True)
class Settled:
    seconds: float
    detail: str


def settle(url: str, limit: float = 900.0) -> Settled:
    started = time.monotonic()
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "mysql":
                detail = _innodb(conn, started + limit)
            elif engine.dialect.name == "postgresql":
                conn.exec_driver_sql("VACUUM order_snapshots")
                conn.exec_driver_sql("CHECKPOINT")
                detail = "VACUUM order_snapshots, CHECKPOINT"
            else:
                detail = "nothing to wait for"
    finally:
        engine.dispose()
    return Settled(time.monotonic() - started, detail)


def _innodb(conn: sa.Connection, deadline: float) -> str:
    before = conn.exec_driver_sql("SELECT @@GLOBAL.innodb_max_dirty_pages_pct").scalar_one()
    conn.exec_driver_sql("SET GLOBAL innodb_max_dirty_pages_pct = 0")
    try:
        while True:
            history, dirty = _history_length(conn), _dirty_share(conn)
            settled = history < HISTORY_SETTLED and dirty <= DIRTY_SETTLED
            if settled or time.monotonic() >= deadline:
                state = "settled" if settled else "gave up waiting"
                return f"{state}: history list {history:,}, {dirty:.1%} of the buffer pool dirty"
            time.sleep(0.5)
    finally:
        conn.exec_driver_sql(f"SET GLOBAL innodb_max_dirty_pages_pct = {float(before)}")


def _history_length(conn: sa.Connection) -> int:
    status = conn.exec_driver_sql("SHOW ENGINE INNODB STATUS").one()[-1]
    found = re.search(r"History list length (\d+)", status)
    return int(found.group(1)) if found else 0


def _dirty_share(conn: sa.Connection) -> float:
    rows = conn.exec_driver_sql(
        "SHOW GLOBAL STATUS WHERE Variable_name IN "
        "('Innodb_buffer_pool_pages_dirty', 'Innodb_buffer_pool_pages_total')"
    ).all()
    values = {name: int(value) for name, value in rows}
    total = values.get("Innodb_buffer_pool_pages_total", 0)
    return values.get("Innodb_buffer_pool_pages_dirty", 0) / total if total else 0.0
