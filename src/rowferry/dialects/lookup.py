"""The dialect object for a connection: one class per database family."""

from __future__ import annotations

import sqlalchemy as sa

from rowferry.dialects.base import Dialect
from rowferry.dialects.mysql import MySQLDialect
from rowferry.dialects.postgresql import PostgreSQLDialect
from rowferry.dialects.sqlite import SQLiteDialect

_DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SQLiteDialect,
    "mysql": MySQLDialect,
    "mariadb": MySQLDialect,
    "postgresql": PostgreSQLDialect,
}


def dialect_for(bind: sa.Connection | sa.Engine) -> Dialect:
    """The dialect object for a connection or engine (SQL-standard behaviour for a database
    rowferry has no class for)."""
    return _DIALECTS.get(bind.dialect.name, Dialect)(bind.dialect)
