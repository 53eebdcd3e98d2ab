"""Child process of ``bench.copy``: one rowferry plain copy of the finished orders.

``python -m bench.copy_rowferry SOURCE_URL TARGET_URL`` runs ``rowferry.run`` with its defaults
(every guarantee on) and prints one JSON line: the in-process seconds, the rows written and the
statements sent. Statements are counted in this process: every cursor execution SQLAlchemy makes
(``before_cursor_execute``, an ``executemany`` counts once), every COMMIT and ROLLBACK, and every
COPY that rowferry sends through psycopg's own cursor on PostgreSQL.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import sqlalchemy as sa

import rowferry
from rowferry.demo import workload

COUNTS = {"statements": 0}


def _count(*_args: Any, **_kwargs: Any) -> None:
    COUNTS["statements"] += 1


def count_statements() -> None:
    """Count on every engine of this process, rowferry's included."""
    for name in ("before_cursor_execute", "commit", "rollback"):
        sa.event.listen(sa.engine.Engine, name, _count)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency of rowferry
        return
    original = psycopg.Cursor.copy

    def copy(self: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
        _count()
        return original(self, *args, **kwargs)

    psycopg.Cursor.copy = copy  # type: ignore[method-assign]


def migration() -> rowferry.Migration:
    return rowferry.Migration(
        name="orders-copy",
        source="orders",
        where="status IN :statuses",
        params={"statuses": list(workload.FINAL_STATUSES)},
        target=rowferry.Target("orders"),
    )


def main(source: str, target: str) -> None:
    count_statements()
    started = time.perf_counter()
    result = rowferry.run(migration(), source, target)
    seconds = time.perf_counter() - started
    report = {
        "seconds": seconds,
        "rows": result.rows_written,
        "status": result.status,
        "statements": COUNTS["statements"],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
