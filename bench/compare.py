"""First cut of the speed comparison of SCENARIO.md: naive, handmade and rowferry on the same data.

``python -m bench.compare [--orders 2700,100000] [--servers mariadb,postgresql]`` builds the
reference workload in a fresh database per server and size, then times on the same data:

- naive: attempt 3 of SCENARIO.md (OFFSET pages of 100 orders, relations loaded per order,
  one INSERT and one COMMIT per snapshot);
- handmade: keyset chunks of 1,000, one query per relation per chunk, one multi-row INSERT and
  one COMMIT per chunk, no checkpoint and no lease;
- rowferry: ``rowferry.run`` with its defaults (every guarantee on).

Each result is checked against the reference snapshots (count, no duplicate, every document
equal). Not yet here: the server-side limit, dlt and pt-archiver, peak memory per approach.
Writes ``bench/compare-report.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests import reference
from tests.conftest import create_database, drop_database

import rowferry
from rowferry import documents
from rowferry.demo import order_history, workload

RELATIONS = {
    "items": "order_items",
    "prescriptions": "prescriptions",
    "payments": "payments",
    "events": "order_status_events",
}
REPORT = Path(__file__).with_name("compare-report.md")


def _rows(conn: sa.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    result = conn.execute(sa.text(sql), params)
    return [dict(r._mapping) for r in result]


def _final() -> sa.BindParameter[Any]:
    return sa.bindparam("s", list(workload.FINAL_STATUSES), expanding=True)


def naive(engine: sa.Engine) -> None:
    """OFFSET pages of 100; relations per order; an INSERT and a COMMIT per snapshot."""
    page = 0
    with engine.connect() as conn:
        while True:
            stmt = sa.text(
                "SELECT * FROM orders WHERE status IN :s ORDER BY id LIMIT 100 OFFSET :o"
            ).bindparams(_final())
            orders = [dict(r._mapping) for r in conn.execute(stmt, {"o": page * 100})]
            if not orders:
                return
            for order in orders:
                related: dict[str, Any] = {
                    "patient": next(
                        iter(
                            _rows(
                                conn,
                                "SELECT * FROM patients WHERE id = :i",
                                {"i": order["patient_id"]},
                            )
                        ),
                        None,
                    )
                }
                for name, table in RELATIONS.items():
                    related[name] = _rows(
                        conn,
                        f"SELECT * FROM {table} WHERE order_id = :i ORDER BY id",
                        {"i": order["id"]},
                    )
                row = order_history.snapshot(order, related)
                conn.execute(
                    sa.text(
                        "INSERT INTO order_snapshots (order_id, status, snapshot) "
                        "VALUES (:o, :s, :d)"
                    ),
                    {
                        "o": row["order_id"],
                        "s": row["status"],
                        "d": documents.dumps(row["snapshot"]),
                    },
                )
                conn.commit()
            page += 1


def handmade(engine: sa.Engine) -> None:
    """Keyset chunks of 1,000; one IN query per relation; one multi-row INSERT per chunk."""
    last = 0
    with engine.connect() as conn:
        while True:
            stmt = sa.text(
                "SELECT * FROM orders WHERE status IN :s AND id > :last ORDER BY id LIMIT 1000"
            ).bindparams(_final())
            orders = [dict(r._mapping) for r in conn.execute(stmt, {"last": last})]
            if not orders:
                return
            ids = [o["id"] for o in orders]
            patients = {
                p["id"]: p for p in _in(conn, "patients", "id", {o["patient_id"] for o in orders})
            }
            children = {
                name: _grouped(_in(conn, table, "order_id", ids))
                for name, table in RELATIONS.items()
            }
            values = []
            for order in orders:
                related = {"patient": patients.get(order["patient_id"])}
                related |= {name: children[name].get(order["id"], []) for name in RELATIONS}
                row = order_history.snapshot(order, related)
                values.append((row["order_id"], row["status"], documents.dumps(row["snapshot"])))
            _insert_many(conn, values)
            conn.commit()
            last = ids[-1]


def _in(conn: sa.Connection, table: str, column: str, keys: Any) -> list[dict[str, Any]]:
    stmt = sa.text(f"SELECT * FROM {table} WHERE {column} IN :k ORDER BY {column}, id")
    return (
        _rows(conn, str(stmt), {})
        if not keys
        else [
            dict(r._mapping)
            for r in conn.execute(stmt.bindparams(sa.bindparam("k", list(keys), expanding=True)))
        ]
    )


def _grouped(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["order_id"]].append(row)
    return groups


def _insert_many(conn: sa.Connection, values: list[tuple[Any, ...]]) -> None:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO order_snapshots (order_id, status, snapshot) VALUES ({mark}, {mark}, {mark})",
        values,
    )


def with_rowferry(engine: sa.Engine) -> None:
    assert rowferry.run(order_history.migration, engine).done


APPROACHES: dict[str, Callable[[sa.Engine], None]] = {
    "naive": naive,
    "handmade": handmade,
    "rowferry": with_rowferry,
}


def _measure(url: str, approach: Callable[[sa.Engine], None]) -> tuple[float, int]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM order_snapshots")
        if sa.inspect(conn).has_table("rowferry_state"):
            conn.exec_driver_sql("DELETE FROM rowferry_state")
    statements = [0]
    sa.event.listen(
        engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1)
    )
    started = time.perf_counter()
    approach(engine)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, statements[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", default="2700")
    parser.add_argument("--servers", default="mariadb,postgresql")
    args = parser.parse_args()
    lines = [
        f"# Speed comparison (first cut), {dt.date.today()}",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}; servers on "
        "this machine over TCP. Statements counted with SQLAlchemy's before_cursor_execute "
        "(PostgreSQL COPY goes through psycopg directly and is not counted).",
        "",
        "| server | orders | approach | seconds | snapshots/s | statements/1,000 orders | "
        "correct |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for server in args.servers.split(","):
        for orders in [int(n) for n in args.orders.split(",")]:
            url = create_database(server, Path("/tmp"))
            try:
                stats = reference.build(url, orders=orders)
                expected = reference.expected_snapshots(url)
                for name, approach in APPROACHES.items():
                    seconds, statements = _measure(url, approach)
                    ok = reference.snapshots(url) == expected
                    rate = stats.qualifying / seconds
                    per_k = statements * 1000 / stats.qualifying
                    line = (
                        f"| {server} | {orders:,} | {name} | {seconds:.2f} | {rate:,.0f} | "
                        f"{per_k:,.0f} | {'yes' if ok else 'NO'} |"
                    )
                    print(line, flush=True)
                    lines.append(line)
            finally:
                drop_database(url)
    REPORT.write_text("\n".join(lines) + "\n")
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
