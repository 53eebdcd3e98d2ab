"""SQLite: one file, ``?`` parameters, any value in any column, and dates held as text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from rowferry.dialects import exact_types
from rowferry.dialects.base import Dialect
from rowferry.dialects.exact_types import Stored

if TYPE_CHECKING:
    from rowferry.dialects.catalog_readers import CatalogReader
    from rowferry.dialects.sql_documents import SqlDocuments


class SQLiteDialect(Dialect):
    name = "sqlite"
    max_params = 30_000
    explain_prefix = "EXPLAIN QUERY PLAN "
    _scan = re.compile(r"\bSCAN (?:TABLE )?(\"[^\"]+\"|\S+)(?! USING (?:COVERING )?INDEX)")
    unheld_floats = ()  # NaN is stored as NULL
    holds_any_value = True
    decimals_as_text = True
    exact_decimals = False
    prefetches = False
    utc_clock_sql = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
    local_clock_sql = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now', 'localtime')"

    def sql_documents(self) -> SqlDocuments:
        from rowferry.dialects.sql_documents import SQLiteDocuments

        return SQLiteDocuments()

    def read_as_stored(self, table: sa.Table, key: Sequence[str]) -> None:
        exact_types.read_as_stored(table, list(key))

    def never_null(self, conn: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> bool:
        """An ``INTEGER PRIMARY KEY``: an alias of the row id, never NULL, though SQLite
        declares it nullable (its other primary keys may hold NULLs)."""
        if list(table.primary_key.columns) != [column]:
            return False
        declared = conn.exec_driver_sql(
            "SELECT type FROM pragma_table_info(?) WHERE name = ?", (table.name, column.name)
        ).scalar()
        return str(declared).upper() == "INTEGER"  # exactly: INT PRIMARY KEY is no alias

    def pushdown_locking(self, conn: sa.Connection) -> str:
        """SQLite locks the database, not rows, for any write."""
        return "no row locks; other writers of the database wait for each chunk's commit"

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

    def catalog_reader(self) -> CatalogReader | None:
        """Written for the standard library's driver."""
        if self.sa_dialect.driver != "pysqlite":
            return None
        from rowferry.dialects.catalog_readers.sqlite import READER

        return READER
