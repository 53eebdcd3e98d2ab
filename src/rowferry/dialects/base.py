"""Everything that differs between SQLite, MySQL/MariaDB and PostgreSQL, in one small class each.

The engine never asks which database it talks to; it asks the dialect object to quote a name,
write a batch of rows under a conflict policy, or explain a query.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from rowferry.dialects.exact_types import Stored
from rowferry.migration.spec import OnConflict


def int_literals(values: Sequence[Any]) -> bool:
    """Whether the keys of an ``IN`` list may be written into a MySQL statement as integer
    literals: every one an ``int`` (``bool`` excluded), written as ``str(int)`` writes it."""
    return bool(values) and all(type(v) is int for v in values)


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
    #: whether any column holds a value of any type (a datetime in a NUMERIC column)
    holds_any_value: ClassVar[bool] = False

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
        return head + self.conflict_clause(columns, unique_key, on)

    def insert_head(self, table: sa.Table, columns: Sequence[str]) -> str:
        cols = ", ".join(self.quote(c) for c in columns)
        return f"INSERT INTO {self.table_name(table)} ({cols})"

    def conflict_clause(
        self, columns: Sequence[str], unique_key: Sequence[str], on: OnConflict
    ) -> str:
        if on == "error":
            return ""
        target = ", ".join(self.quote(c) for c in unique_key)
        updates = [c for c in columns if c not in unique_key]
        if on == "skip" or not updates:
            return f" ON CONFLICT ({target}) DO NOTHING"
        sets = ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in updates)
        return f" ON CONFLICT ({target}) DO UPDATE SET {sets}"

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

    def json_text(self, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
        """A JSON column read as its text, unparsed: parsed, a JSON ``null`` would be SQL NULL,
        a bare JSON string JSON text, and PostgreSQL's jsonb numbers floats."""
        return sa.cast(column, sa.Text)


class SQLiteDialect(Dialect):
    name = "sqlite"
    max_params = 30_000
    explain_prefix = "EXPLAIN QUERY PLAN "
    _scan = re.compile(r"\bSCAN (?:TABLE )?(\"[^\"]+\"|\S+)(?! USING (?:COVERING )?INDEX)")
    unheld_floats = ()  # NaN is stored as NULL
    holds_any_value = True

    def rounds_numbers(self, kind: sa.types.TypeEngine[Any]) -> bool:
        """Columns of numeric, integer or real affinity (SQLAlchemy's numbers, JSON, and
        types it does not know) turn numeric text into integers or doubles."""
        return isinstance(kind, sa.Numeric | sa.Integer | sa.JSON | sa.types.NullType)

    def json_text(self, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
        """As SQLite holds it: JSON text, or the integer or double its numeric affinity made of
        a bare JSON number (as text, a double would be cut to 15 digits)."""
        return sa.type_coerce(column, Stored(column.type))

    def keeps_text(self, kind: sa.types.TypeEngine[Any]) -> bool:
        """Dates and times: SQLite holds them as text (a key read as stored is such text)."""
        return isinstance(kind, sa.Date | sa.DateTime | sa.Time)

    def placeholder(self) -> str:
        return "?"

    def is_transient(self, exc: sa.exc.DBAPIError) -> bool:
        return super().is_transient(exc) or "database is locked" in str(exc.orig)

    def full_scans(self, plan: Sequence[str]) -> list[str]:
        found = []
        for line in plan:
            match = self._scan.search(line)
            if match and "USING" not in line[match.end() :]:
                found.append(match.group(1).strip('"'))
        return found


class MySQLDialect(Dialect):
    """MySQL and MariaDB: multi-row INSERTs as large as ``max_allowed_packet`` allows (see
    :mod:`rowferry.drivers.mysql_insert`; other drivers: their ``executemany``). A row larger than
    the packet is rejected before it is sent (other drivers: one whose values alone are)."""

    name = "mysql"
    max_params = 60_000
    unheld_floats = (float("inf"), float("-inf"))  # and no NaN

    def packs_relations(self) -> bool:
        """MariaDB 10.5 or later, through PyMySQL (whose converters :mod:`rowferry.chunks.packed`
        reproduces; the C driver decodes fast enough without)."""
        version = getattr(self.sa_dialect, "server_version_info", None) or (0,)
        return (
            bool(getattr(self.sa_dialect, "is_mariadb", False))
            and tuple(version) >= (10, 5)
            and self.sa_dialect.driver == "pymysql"
        )

    def in_list(self, column: sa.ColumnElement[Any], values: list[Any]) -> sa.ColumnElement[bool]:
        """Integer keys as literals: PyMySQL and mysqlclient write parameters into the
        statement's text on the client anyway, and a literal skips SQLAlchemy's rendering and
        the driver's escaping of one parameter each (nearly half the CPU of a query with 1,000
        keys). The statement stays compiled once (``literal_execute``); other keys stay
        parameters."""
        if not int_literals(values):
            return column.in_(values)
        keys = sa.bindparam(None, values, type_=sa.Integer(), expanding=True, literal_execute=True)
        return column.in_(keys)

    def write_rows(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        unique_key: Sequence[str],
        on: OnConflict,
    ) -> int:
        from rowferry.drivers import mysql_insert  # the MySQL writer, loaded for MySQL only

        if not mysql_insert.supports(conn):
            mysql_insert.refuse_oversized(conn, self.insert_head(table, columns), rows)
            return super().write_rows(conn, table, columns, rows, unique_key, on)
        head = self.insert_head(table, columns)
        clause = self.conflict_clause(columns, unique_key, on)
        return mysql_insert.write(conn, head, clause, rows)

    def describe_write(
        self, table: sa.Table, columns: Sequence[str], unique_key: Sequence[str], on: OnConflict
    ) -> str:
        sql = self.insert_sql(table, columns, unique_key, on)
        return f"{sql}\n-- every row of the chunk, as few statements as max_allowed_packet allows"

    def conflict_clause(
        self, columns: Sequence[str], unique_key: Sequence[str], on: OnConflict
    ) -> str:
        if on == "error":
            return ""
        updates = [c for c in columns if c not in unique_key]
        if on == "skip" or not updates:
            first = self.quote(unique_key[0])
            return f" ON DUPLICATE KEY UPDATE {first} = {first}"
        sets = ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in updates)
        return f" ON DUPLICATE KEY UPDATE {sets}"

    #: lock wait timeout, deadlock, server gone away, lost connection, can't connect,
    #: connection killed (MariaDB), server shutdown in progress
    transient_codes: ClassVar[frozenset[int]] = frozenset(
        {1205, 1213, 2006, 2013, 2003, 1927, 1053}
    )

    def is_transient(self, exc: sa.exc.DBAPIError) -> bool:
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        return super().is_transient(exc) or code in self.transient_codes

    def explain(self, conn: sa.Connection, sql: str) -> list[str]:
        result = conn.exec_driver_sql("EXPLAIN " + sql)
        keys = list(result.keys())
        return [" | ".join(f"{k}={v}" for k, v in zip(keys, row, strict=True)) for row in result]

    def full_scans(self, plan: Sequence[str]) -> list[str]:
        found = []
        for line in plan:
            fields = dict(part.split("=", 1) for part in line.split(" | ") if "=" in part)
            table = fields.get("table", "?")
            # ALL: table scan; index: full index scan. <derivedN>/<subqueryN> are MariaDB's
            # own temporary tables (it turns long IN lists into a table value constructor).
            if fields.get("type") in ("ALL", "index") and not table.startswith("<"):
                found.append(table)
        return found


class PostgreSQLDialect(Dialect):
    """PostgreSQL: rows go in with COPY (straight in, or through a staging table for upserts)."""

    name = "postgresql"
    max_params = 30_000
    time_zones = True
    _scan = re.compile(r"Seq Scan on (\"[^\"]+\"|\S+)")
    #: serialization failure, deadlock, lock timeout, admin/crash shutdown, connection exceptions
    transient_states: ClassVar[tuple[str, ...]] = (
        "40001",
        "40P01",
        "55P03",
        "57P01",
        "57P02",
        "57P03",
        "08",
    )

    def is_transient(self, exc: sa.exc.DBAPIError) -> bool:
        state = getattr(exc.orig, "sqlstate", None) or ""
        lost = state == "" and isinstance(exc, sa.exc.OperationalError)
        return super().is_transient(exc) or lost or state.startswith(self.transient_states)

    def in_list(self, column: sa.ColumnElement[Any], values: list[Any]) -> sa.ColumnElement[bool]:
        """``column = ANY(%s)`` with one array parameter: planned and parsed once, where an
        ``IN`` list of a thousand parameters costs milliseconds per query on both sides."""
        array = sa.bindparam(None, values, type_=postgresql.ARRAY(column.type))
        return column == sa.any_(array)

    def write_rows(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        unique_key: Sequence[str],
        on: OnConflict,
    ) -> int:
        """COPY through psycopg's own cursor; its errors are wrapped like SQLAlchemy's own."""
        import psycopg

        if not conn.in_transaction():  # so that conn.commit()/rollback() reach the driver
            conn.begin()
        try:
            return self._copy_rows(conn, table, columns, rows, unique_key, on)
        except psycopg.Error as exc:
            sql = f"COPY {self.table_name(table)} ..."
            raise sa.exc.DBAPIError.instance(sql, None, exc, psycopg.Error) from exc

    def _copy_rows(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        unique_key: Sequence[str],
        on: OnConflict,
    ) -> int:
        from rowferry.drivers import pg_copy  # the PostgreSQL writer, loaded for PostgreSQL only

        cols = ", ".join(self.quote(c) for c in columns)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        binary = pg_copy.binary_types(table, columns, rows)
        if on == "error":  # straight in: a duplicate key fails the whole COPY, as it should
            pg_copy.copy(cursor, self.table_name(table), cols, binary, rows)
            return len(rows)
        digest = hashlib.sha1(f"{self.table_name(table)}({cols})".encode()).hexdigest()[:16]
        stage = f"rowferry_stage_{digest}"
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {cols} FROM {self.table_name(table)} WITH NO DATA"
        )
        pg_copy.copy(cursor, stage, cols, binary, rows)
        clause = self.conflict_clause(columns, unique_key, on)
        cursor.execute(
            f"INSERT INTO {self.table_name(table)} ({cols}) SELECT {cols} FROM {stage}{clause}"
        )
        return int(max(cursor.rowcount, 0))

    def describe_write(
        self, table: sa.Table, columns: Sequence[str], unique_key: Sequence[str], on: OnConflict
    ) -> str:
        cols = ", ".join(self.quote(c) for c in columns)
        if on == "error":
            return f"COPY {self.table_name(table)} ({cols}) FROM STDIN  -- every row of the chunk"
        clause = self.conflict_clause(columns, unique_key, on)
        return (
            f"COPY rowferry_stage_<hash> ({cols}) FROM STDIN  -- every row of the chunk\n"
            f"INSERT INTO {self.table_name(table)} ({cols}) "
            f"SELECT {cols} FROM rowferry_stage_<hash>{clause}"
        )

    def full_scans(self, plan: Sequence[str]) -> list[str]:
        return [m.group(1).strip('"') for line in plan for m in [self._scan.search(line)] if m]


_DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SQLiteDialect,
    "mysql": MySQLDialect,
    "mariadb": MySQLDialect,
    "postgresql": PostgreSQLDialect,
}


def dialect_for(bind: sa.Connection | sa.Engine) -> Dialect:
    """The dialect object for a connection or engine."""
    return _DIALECTS[bind.dialect.name](bind.dialect)
