"""Run one approach of the speed comparison in this process and print one JSON line.

``python -m bench.compare_one APPROACH URL [--cap SECONDS] [--warm]`` prints
``{"status": "ok" | "not available" | "error", "seconds", "statements", "direct", "commits",
"capped", "error"}``. ``seconds`` runs from before the engine is created (so before connecting) to
after it is disposed. With ``--warm`` the approach runs twice on one engine, as in a warm Lambda
function or a worker: the first run, untimed, initializes the dialect, reads the tables'
definitions and compiles its statements into the engine's cache; then the target is emptied and
the server left to settle, and ``seconds`` and the counts are those of the second run alone.
Neither engine pools connections, so the second run connects anew, as rowferry's Lambda
handler does in each invocation.

``statements`` counts SQLAlchemy's ``before_cursor_execute`` events (an ``executemany`` is one);
``commits`` counts COMMITs; ``direct`` counts statements sent through the driver's own cursor,
which SQLAlchemy does not see (on PostgreSQL rowferry's COPY, its staging table and the INSERT from
it; on MySQL its multi-row INSERTs). The driver reads the peak RSS of this process from ``wait4``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import threading
import time
import traceback
from typing import Any

import sqlalchemy as sa

from bench.approaches import APPROACHES, NotAvailable
from bench.reset import start_over
from bench.settle import settle
from rowferry.dialects import connect as connections


class Counts:
    """Statements seen by SQLAlchemy, statements sent around it, and commits."""

    def __init__(self) -> None:
        self.statements = 0
        self.direct = 0
        self.commits = 0
        self._inside = threading.local()

    def attach(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)
        sa.event.listen(engine, "handle_error", self._error)
        sa.event.listen(engine, "commit", self._commit)
        if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
            sa.event.listen(engine, "connect", self._count_psycopg)
        if engine.dialect.name in ("mysql", "mariadb"):
            sa.event.listen(engine, "connect", self._count_mysql)

    def _before(self, *args: Any) -> None:
        self.statements += 1
        self._inside.sqlalchemy = True

    def _after(self, *args: Any) -> None:
        self._inside.sqlalchemy = False

    def _error(self, *args: Any) -> None:
        self._inside.sqlalchemy = False

    def _commit(self, *args: Any) -> None:
        self.commits += 1

    def _direct(self) -> None:
        if not getattr(self._inside, "sqlalchemy", False):
            self.direct += 1

    def _count_psycopg(self, dbapi_connection: Any, record: Any) -> None:
        base = dbapi_connection.cursor_factory
        methods = ("execute", "executemany", "copy")
        dbapi_connection.cursor_factory = _counting(base, methods, self._direct)

    def _count_mysql(self, dbapi_connection: Any, record: Any) -> None:
        base = dbapi_connection.cursorclass
        dbapi_connection.cursorclass = _counting(base, ("execute",), self._direct)


def _counting(base: type, methods: tuple[str, ...], count: Any) -> type:
    """A subclass of the driver's cursor class that calls ``count()`` before each of ``methods``."""

    def counted(name: str) -> Any:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            count()
            return getattr(super(cursor, self), name)(*args, **kwargs)

        return method

    cursor = type("CountingCursor", (base,), {name: counted(name) for name in methods})
    return cursor


def _engine(approach: str, url: str) -> sa.Engine:
    """The engine the approach's user would have: SQLAlchemy's defaults for the scripts,
    rowferry's own (what ``rowferry run --url`` makes) for rowferry, on the C driver for
    ``rowferry-mysqlclient``. Neither pools connections: each run connects anew."""
    if not approach.startswith("rowferry"):
        return sa.create_engine(url, poolclass=sa.pool.NullPool)
    if approach == "rowferry-mysqlclient":
        if not url.startswith("mysql+pymysql"):
            raise NotAvailable("mysqlclient is a MySQL/MariaDB driver")
        if importlib.util.find_spec("MySQLdb") is None:
            raise NotAvailable("mysqlclient is not installed (pip install 'rowferry[mysqlclient]')")
        url = url.replace("mysql+pymysql", "mysql+mysqldb", 1)
    return connections.create_engine(url)


def run(approach: str, url: str, cap: float | None, *, warm: bool = False) -> dict[str, Any]:
    counts = Counts()
    out: dict[str, Any] = {"status": "ok", "capped": False, "error": None}
    started = time.perf_counter()
    try:
        engine = _engine(approach, url)
        try:
            if warm:
                started = _warm_up(approach, engine, url, cap)
            counts.attach(engine)
            out["capped"] = APPROACHES[approach](engine, cap)
        finally:
            engine.dispose()
        out["seconds"] = time.perf_counter() - started
    except NotAvailable as exc:
        out.update(status="not available", error=str(exc))
    except Exception as exc:
        traceback.print_exc()
        first_line = (str(exc).splitlines() or [""])[0]
        out.update(status="error", error=f"{type(exc).__name__}: {first_line}"[:300])
    out.setdefault("seconds", time.perf_counter() - started)
    out.update(statements=counts.statements, direct=counts.direct, commits=counts.commits)
    return out


def _warm_up(approach: str, engine: sa.Engine, url: str, cap: float | None) -> float:
    """The untimed first run of ``--warm``, then the target emptied and the server settled;
    when the timed run starts."""
    APPROACHES[approach](engine, cap)
    engine.dispose()
    start_over(url)
    settle(url)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("approach", choices=sorted(APPROACHES))
    parser.add_argument("url")
    parser.add_argument("--cap", type=float, default=None, help="time cap in seconds (naive)")
    parser.add_argument("--warm", action="store_true", help="time a second run, engine kept")
    args = parser.parse_args()
    print(json.dumps(run(args.approach, args.url, args.cap, warm=args.warm)), flush=True)


if __name__ == "__main__":
    main()
