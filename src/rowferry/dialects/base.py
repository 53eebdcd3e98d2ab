"""The dialect contract: the SQL-standard behaviour, which each database's class overrides where
it differs (:mod:`rowferry.dialects.sqlite`, :mod:`rowferry.dialects.mysql`,
:mod:`rowferry.dialects.postgresql`).

The engine never asks which database it talks to; it asks the dialect object to quote a name,
write a batch of rows under a conflict policy, or explain a query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from rowferry.errors import ConfigError
from rowferry.migration.spec import OnConflict

if TYPE_CHECKING:
    from rowferry.dialects.catalog_readers import CatalogReader
    from rowferry.dialects.sql_documents import SqlDocuments


class PushdownSession:
    """Settings a pushed-down chunk needs before its first statement, on one connection."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def begin_chunk(self) -> bool:
        """Prepare the chunk's transaction. True where the chunk's first statement must also
        switch JIT compilation off (PostgreSQL)."""
        return False


class Dialect:
    """Base class: the SQL-standard behaviour, overridden where a database differs."""

    name: ClassVar[str] = "sql"
    #: most parameters one statement may carry (keys in one ``IN`` list are split below this)
    max_params: ClassVar[int] = 30_000
    explain_prefix: ClassVar[str] = "EXPLAIN "
    #: the floats a column cannot hold besides NaN; None: every float, NaN too
    unheld_floats: ClassVar[tuple[float, ...] | None] = None
    #: whether a datetime column may keep a time zone (else every one holds naive times)
    time_zones: ClassVar[bool] = False
    #: whether a TIME column holds durations (past 24 hours, negative) rather than times of
    #: day, so that its values are read as the driver's ``timedelta``
    time_is_duration: ClassVar[bool] = False
    #: whether any column holds a value of any type (a datetime in a NUMERIC column)
    holds_any_value: ClassVar[bool] = False
    #: whether decimals are written as their text (a double would lose digits)
    decimals_as_text: ClassVar[bool] = False
    #: whether DECIMAL/NUMERIC values compare exactly (SQLite compares them as doubles, text
    #: or integers, so such a column cannot be a chunk key)
    exact_decimals: ClassVar[bool] = True
    #: whether the next chunk is read on a second connection while one is written (SQLite:
    #: one file, one reader is enough)
    prefetches: ClassVar[bool] = True

    def __init__(self, sa_dialect: sa.Dialect) -> None:
        self.sa_dialect = sa_dialect
        self._preparer = sa_dialect.identifier_preparer

    def quote(self, name: str) -> str:
        return str(self._preparer.quote(name))

    def table_name(self, table: sa.Table) -> str:
        return str(self._preparer.format_table(table))

    def placeholder(self) -> str:
        return "%s"

    def insert_sql(
        self, table: sa.Table, columns: Sequence[str], unique_key: Sequence[str], on: OnConflict
    ) -> str:
        """``INSERT INTO t (cols) VALUES (...)`` with the conflict clause of ``on``."""
        marks = ", ".join(self.placeholder() for _ in columns)
        head = f"{self.insert_head(table, columns)} VALUES ({marks})"
        return head + self.conflict_clause(table, columns, unique_key, on)

    def insert_head(self, table: sa.Table, columns: Sequence[str]) -> str:
        cols = ", ".join(self.quote(c) for c in columns)
        return f"INSERT INTO {self.table_name(table)} ({cols})"

    def conflict_clause(
        self, table: sa.Table, columns: Sequence[str], unique_key: Sequence[str], on: OnConflict
    ) -> str:
        """What follows the rows of an ``INSERT`` under the policy ``on``: the one conflict
        clause of both paths (the Python path's ``VALUES``, pushdown's ``SELECT``)."""
        if on == "error":
            return ""
        target = ", ".join(self.quote(c) for c in unique_key)
        updates = [c for c in columns if c not in unique_key]
        if on == "skip" or not updates:
            return f" ON CONFLICT ({target}) DO NOTHING"
        sets = ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in updates)
        return f" ON CONFLICT ({target}) DO UPDATE SET {sets}"

    def insert_select(
        self,
        table: sa.Table,
        columns: Sequence[str],
        select: sa.Select[Any],
        unique_key: Sequence[str],
        on: OnConflict,
    ) -> Any:
        """``INSERT INTO table (columns) <select>`` under the same conflict clause as the rows
        the Python path writes (:meth:`conflict_clause`)."""
        if on == "error":
            return sa.insert(table).from_select(list(columns), select)
        from rowferry.dialects.conflict import InsertWithClause

        clause = self.conflict_clause(table, columns, unique_key, on)
        return InsertWithClause(table, clause).from_select(list(columns), select)

    def write_rows(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        unique_key: Sequence[str],
        on: OnConflict,
    ) -> int:
        """Write ``rows`` in bulk inside the caller's transaction; return the rows inserted."""
        result = conn.exec_driver_sql(self.insert_sql(table, columns, unique_key, on), rows)
        return max(result.rowcount, 0)

    def describe_write(
        self, table: sa.Table, columns: Sequence[str], unique_key: Sequence[str], on: OnConflict
    ) -> str:
        """The write statement(s) one chunk sends, for people to read."""
        sql = self.insert_sql(table, columns, unique_key, on)
        return f"{sql}\n-- one executemany with every row of the chunk"

    def packs_relations(self) -> bool:
        """Whether related rows are read packed as JSON (see :mod:`rowferry.chunks.packed`)."""
        return False

    def rounds_numbers(self, kind: sa.types.TypeEngine[Any]) -> bool:
        """Whether a column of this type holds the numbers written to it as doubles (decimals
        as text included), so that a decimal no double spells exactly changes."""
        return False

    def keeps_text(self, kind: sa.types.TypeEngine[Any]) -> bool:
        """Whether text written to a column of this type is kept as it is, where SQLAlchemy's
        type would only take its own Python type (a date as text, as SQLite holds dates)."""
        return False

    def in_list(self, column: sa.ColumnElement[Any], values: list[Any]) -> sa.ColumnElement[bool]:
        """``column IN (values)``: how one chunk's related rows are looked up."""
        return column.in_(values)

    def explain(self, conn: sa.Connection, sql: str) -> list[str]:
        result = conn.exec_driver_sql(self.explain_prefix + sql)
        return [" | ".join(str(v) for v in row) for row in result]

    def full_scans(self, plan: Sequence[str]) -> list[str]:
        """Names of the tables a plan reads from end to end."""
        return []

    def is_transient(self, exc: sa.exc.DBAPIError) -> bool:
        """Whether retrying the failed transaction may succeed (deadlock, lost connection ...)."""
        return bool(exc.connection_invalidated)

    #: ``SELECT`` of the database's clock in UTC, and in the session's local time
    utc_clock_sql: ClassVar[str] = "SELECT CURRENT_TIMESTAMP AT TIME ZONE 'UTC'"
    local_clock_sql: ClassVar[str] = "SELECT LOCALTIMESTAMP"

    def now(self, conn: sa.Connection, clock: str) -> dt.datetime:
        """The database's clock, in UTC or in the session's ``local`` time, without a zone."""
        sql = self.utc_clock_sql if clock == "utc" else self.local_clock_sql
        value = conn.exec_driver_sql(sql).scalar()
        if isinstance(value, str):  # SQLite's clock is text
            value = dt.datetime.fromisoformat(value)
        if not isinstance(value, dt.datetime):
            raise TypeError(f"the database's clock gave {value!r}, not a date and time")
        return value.replace(tzinfo=None)

    def read_as_stored(self, table: sa.Table, key: Sequence[str]) -> None:
        """Give a source table's columns the types that read values as the database holds
        them, where SQLAlchemy's own would convert them (SQLite)."""

    def never_null(self, conn: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> bool:
        """Whether a column declared nullable can hold no NULL all the same."""
        return False

    # -- pushdown ------------------------------------------------------------------------

    def sql_documents(self) -> SqlDocuments:
        """The builder of documents in this database's SQL (pushdown's Snapshot)."""
        from rowferry.dialects.sql_documents import SqlDocuments

        return SqlDocuments()

    def document_as(
        self, document: sa.ColumnElement[Any], kind: sa.types.TypeEngine[Any]
    ) -> sa.ColumnElement[Any]:
        """A document built in SQL as a value for a target column of type ``kind``."""
        return document

    def has_min_max(self, kind: sa.types.TypeEngine[Any]) -> bool:
        """Whether ``MIN``/``MAX`` work on a column of this type."""
        return True

    def pushdown_locking(self, conn: sa.Connection) -> str:
        """What a pushed-down chunk locks in the source, for ``plan``."""
        return "no source rows are locked (plain reads)"

    def pushdown_session(self, conn: sa.Connection) -> PushdownSession:
        """What each pushed-down chunk's transaction sets first on ``conn``."""
        return PushdownSession(conn)

    def json_text(self, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
        """A JSON column read as its text, unparsed: parsed, a JSON ``null`` would be SQL NULL,
        a bare JSON string JSON text, and PostgreSQL's jsonb numbers floats."""
        return sa.cast(column, sa.Text)

    # -- schema ----------------------------------------------------------------------------

    def catalog_reader(self) -> CatalogReader | None:
        """The reader of this database's catalog in one statement written for this connection's
        driver (:mod:`rowferry.dialects.catalog_readers`); None: SQLAlchemy's reflection reads
        the tables (:func:`rowferry.schema.catalog.read`)."""
        return None

    # -- health readings (the gates of rowferry.engine.throttle) ---------------------------

    def replica_lag(self, conn: sa.Connection) -> float | None:
        """Seconds this server, a replica, is behind its primary; None while it cannot tell
        (replication stopped), which the gate counts as over its limit."""
        raise ConfigError(f"replica lag is not measured on {self.sa_dialect.name}")

    def threads_running_sql(self) -> str:
        """The statement that reads how many statements the server is running now. Asked
        before connecting, so a database that does not measure it is refused without one."""
        raise ConfigError(f"running threads are not measured on {self.sa_dialect.name}")

    def history_length_sql(self) -> str:
        """The statement that reads InnoDB's history list length (undo records not yet
        purged). Asked before connecting, like :meth:`threads_running_sql`."""
        raise ConfigError("the history list length is InnoDB's: MySQL and MariaDB only")
