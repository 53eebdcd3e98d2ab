"""MySQL and MariaDB: multi-row INSERTs, ``ON DUPLICATE KEY UPDATE``, packed related rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from rowferry.dialects.base import Dialect, PushdownSession
from rowferry.errors import ConfigError
from rowferry.migration.spec import OnConflict

if TYPE_CHECKING:
    from rowferry.dialects.catalog_readers import CatalogReader
    from rowferry.dialects.sql_documents import SqlDocuments


def int_literals(values: Sequence[Any]) -> bool:
    """Whether the keys of an ``IN`` list may be written into a MySQL statement as integer
    literals: every one an ``int`` (``bool`` excluded), written as ``str(int)`` writes it."""
    return bool(values) and all(type(v) is int for v in values)


def binlog_allows_consistent_reads(log_bin: Any, binlog_format: Any) -> bool:
    """Whether InnoDB lets a READ COMMITTED ``INSERT ... SELECT`` read its source without locks:
    not under statement-based binary logging (it refuses the statement there)."""
    logging = str(log_bin).upper() in ("1", "ON")  # MariaDB and MySQL say 1; allow ON
    return not logging or str(binlog_format).upper() != "STATEMENT"


def reads_without_locks(conn: sa.Connection) -> bool:
    """:func:`binlog_allows_consistent_reads` for this server connection's binary logging."""
    binlog = conn.exec_driver_sql("SELECT @@log_bin, @@session.binlog_format")
    return binlog_allows_consistent_reads(*binlog.one())


class MySQLPushdownSession(PushdownSession):
    """MariaDB/MySQL cut JSON_ARRAYAGG at group_concat_max_len (1 MiB) with a mere warning,
    leaving invalid JSON: the limit is lifted once per server connection. Each chunk's
    transaction is READ COMMITTED where binary logging allows it (see
    :mod:`rowferry.chunks.pushdown`)."""

    def __init__(self, conn: sa.Connection) -> None:
        super().__init__(conn)
        self._prepared: int | None = None  # the server connection prepared for chunks
        self._consistent = False  # READ COMMITTED allowed for the chunks

    def begin_chunk(self) -> bool:
        """``SET TRANSACTION`` is refused inside a transaction: at a chunk's start the only one
        open holds reads (the count's), since every write commits with its checkpoint, so it is
        rolled back first."""
        conn = self.conn
        if conn.in_transaction():
            conn.rollback()
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and id(dbapi) != self._prepared:
            conn.exec_driver_sql("SET SESSION group_concat_max_len = 4294967295")
            self._consistent = reads_without_locks(conn)
            self._prepared = id(dbapi)
        if self._consistent:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        return False


class MySQLDialect(Dialect):
    """MySQL and MariaDB: multi-row INSERTs as large as ``max_allowed_packet`` allows (see
    :mod:`rowferry.drivers.mysql_insert`; other drivers: their ``executemany``). A row larger than
    the packet is rejected before it is sent (other drivers: one whose values alone are)."""

    name = "mysql"
    time_is_duration = True  # -838:59:59 to 838:59:59
    max_params = 60_000
    utc_clock_sql = "SELECT UTC_TIMESTAMP(6)"
    local_clock_sql = "SELECT NOW(6)"
    unheld_floats = (float("inf"), float("-inf"))  # and no NaN

    def sql_documents(self) -> SqlDocuments:
        from rowferry.dialects.sql_documents import MySQLDocuments

        return MySQLDocuments()

    def pushdown_locking(self, conn: sa.Connection) -> str:
        if reads_without_locks(conn):
            return "each chunk runs READ COMMITTED: no source rows are locked"
        return (
            "statement-based binary logging: each chunk holds shared locks on the source rows it "
            "reads until it commits"
        )

    def pushdown_session(self, conn: sa.Connection) -> PushdownSession:
        return MySQLPushdownSession(conn)

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
        clause = self.conflict_clause(table, columns, unique_key, on)
        return mysql_insert.write(conn, head, clause, rows)

    def describe_write(
        self, table: sa.Table, columns: Sequence[str], unique_key: Sequence[str], on: OnConflict
    ) -> str:
        sql = self.insert_sql(table, columns, unique_key, on)
        return f"{sql}\n-- every row of the chunk, as few statements as max_allowed_packet allows"

    def conflict_clause(
        self, table: sa.Table, columns: Sequence[str], unique_key: Sequence[str], on: OnConflict
    ) -> str:
        if on == "error":
            return ""
        updates = [c for c in columns if c not in unique_key]
        if on == "skip" or not updates:
            # qualified: under INSERT ... SELECT the selected tables may have the same column
            first = self.quote(unique_key[0])
            return f" ON DUPLICATE KEY UPDATE {first} = {self.table_name(table)}.{first}"
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

    def catalog_reader(self) -> CatalogReader | None:
        """Written for PyMySQL and mysqlclient."""
        if self.sa_dialect.driver not in ("pymysql", "mysqldb"):
            return None
        from rowferry.dialects.catalog_readers.mysql import READER

        return READER

    def replica_lag(self, conn: sa.Connection) -> float | None:
        """``Seconds_Behind_Master``, NULL while either replication thread is stopped."""
        status = conn.exec_driver_sql("SHOW SLAVE STATUS").mappings().first()
        if status is None:
            where = conn.engine.url.render_as_string(hide_password=True)
            raise ConfigError(f"{where} is not a replica")
        seconds = status["Seconds_Behind_Master"]
        return None if seconds is None else float(seconds)

    def threads_running_sql(self) -> str:
        return (
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
            "WHERE VARIABLE_NAME = 'THREADS_RUNNING'"
        )

    def history_length_sql(self) -> str:
        return (
            "SELECT `count` FROM information_schema.INNODB_METRICS "
            "WHERE name = 'trx_rseg_history_len'"
        )
