"""PostgreSQL: COPY for writes, ``= ANY(array)`` for lookups, SQLSTATEs for retries."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from rowferry.dialects.base import Dialect, PushdownSession
from rowferry.errors import ConfigError
from rowferry.migration.spec import OnConflict

if TYPE_CHECKING:
    from rowferry.dialects.catalog_readers import CatalogReader
    from rowferry.dialects.sql_documents import SqlDocuments

#: a standby that has replayed all it received is not behind, however old its last replayed
#: transaction; otherwise it is as far behind as that transaction is old
_LAG = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())
       END
"""


class PostgreSQLPushdownSession(PushdownSession):
    """JIT compilation off for each chunk's transaction, in the chunk's first statement
    (PostgreSQL 11 and later have ``jit``; see :mod:`rowferry.chunks.pushdown`)."""

    def begin_chunk(self) -> bool:
        return (self.conn.dialect.server_version_info or (0,)) >= (11,)


class PostgreSQLDialect(Dialect):
    """PostgreSQL: rows go in with COPY (straight in, or through a staging table for upserts)."""

    name = "postgresql"
    max_params = 30_000
    time_zones = True
    utc_clock_sql = "SELECT now() AT TIME ZONE 'UTC'"
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

    def sql_documents(self) -> SqlDocuments:
        from rowferry.dialects.sql_documents import PostgreSQLDocuments

        return PostgreSQLDocuments()

    def document_as(
        self, document: sa.ColumnElement[Any], kind: sa.types.TypeEngine[Any]
    ) -> sa.ColumnElement[Any]:
        """PostgreSQL builds ``json`` (``jsonb`` past 50 pairs): cast it to the target column's
        type (``jsonb``, ``json`` or text), which an INSERT does not do by itself."""
        return sa.cast(document, kind)

    def has_min_max(self, kind: sa.types.TypeEngine[Any]) -> bool:
        """PostgreSQL has no ``MIN``/``MAX`` for ``uuid``, ``bytea`` or ``boolean``."""
        return not isinstance(kind, sa.Uuid | sa.LargeBinary | sa.Boolean)

    def pushdown_session(self, conn: sa.Connection) -> PushdownSession:
        return PostgreSQLPushdownSession(conn)

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
        clause = self.conflict_clause(table, columns, unique_key, on)
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
        clause = self.conflict_clause(table, columns, unique_key, on)
        return (
            f"COPY rowferry_stage_<hash> ({cols}) FROM STDIN  -- every row of the chunk\n"
            f"INSERT INTO {self.table_name(table)} ({cols}) "
            f"SELECT {cols} FROM rowferry_stage_<hash>{clause}"
        )

    def full_scans(self, plan: Sequence[str]) -> list[str]:
        return [m.group(1).strip('"') for line in plan for m in [self._scan.search(line)] if m]

    def catalog_reader(self) -> CatalogReader | None:
        """Written for psycopg 3."""
        if self.sa_dialect.driver != "psycopg":
            return None
        from rowferry.dialects.catalog_readers.postgresql import READER

        return READER

    def replica_lag(self, conn: sa.Connection) -> float | None:
        """A standby's replay delay (see ``_LAG``)."""
        standby, seconds = conn.exec_driver_sql(_LAG).one()
        if not standby:
            where = conn.engine.url.render_as_string(hide_password=True)
            raise ConfigError(f"{where} is not a standby")
        return None if seconds is None else float(seconds)

    def threads_running_sql(self) -> str:
        """Active backends, this connection's own not counted."""
        return (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE state = 'active' AND pid <> pg_backend_pid()"
        )
