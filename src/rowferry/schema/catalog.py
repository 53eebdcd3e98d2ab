"""Table definitions read from the catalog in one hand-written statement.

SQLAlchemy's reflection of a migration's tables costs a new engine dearly, and every
``rowferry run`` and every Lambda invocation makes a new engine:
- on PostgreSQL it builds eight catalog queries with its Core and compiles them, tens of
  milliseconds of CPU for a cold process;
- on MySQL/MariaDB it sends one ``SHOW CREATE TABLE`` per table and parses the text with some
  forty regular expressions, compiled once per process;
- on SQLite it sends five PRAGMAs per table.

:func:`read` builds the ``Table`` objects from one statement of plain SQL instead (PostgreSQL's
catalog, ``information_schema`` on MySQL/MariaDB, SQLite's table-valued pragmas: one module per
database in :mod:`rowferry.dialects.catalog_readers`, the dialect object giving the one written
for the connection's driver, none for other drivers), with what rowferry reads from a reflected
table: the columns, their types, nullability and defaults, the primary key, the unique
constraints and the indexes. It only does so for tables it fully understands: a column type it
does not know the reflection of (arrays, enums, sets, domains, intervals with fields, types of
extensions), a generated column, a column with its own collation (except on MariaDB), an index
on an expression, on a prefix or with a ``WHERE``, a full-text, spatial or exclusion index, or a
table in an attached SQLite database make it return None, and SQLAlchemy reflects those tables
as before. The types are made as SQLAlchemy's own reflection makes them;
``tests/test_catalog.py`` compares the two table by table on every database, so a SQLAlchemy
that reflects differently fails there.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from rowferry.dialects.catalog_readers import Build, Found, NotPlain
from rowferry.dialects.lookup import dialect_for

#: tables by key, as ``MetaData.tables`` has them
Tables = dict[str, sa.Table]


def read(conn: sa.Connection, schema: str | None, names: Sequence[str]) -> Tables | None:
    """The tables of ``names`` that exist, by key (``name``, or ``schema.name`` with a
    ``schema``); None when one of them is not plain enough or the database has no reader here.

    The catalog is read every time; when it says what it said the last time for the same
    tables of the same database in this process, the ``Table`` objects built then are
    returned again (see :class:`_Built`)."""
    reader = dialect_for(conn).catalog_reader()
    if reader is None:
        return None
    names = list(dict.fromkeys(names))
    try:
        rows = [tuple(row) for row in reader.fetch(conn, schema, names)] if names else []
        return _built.tables(conn, schema, names, rows, reader.build)
    except NotPlain:
        return None


class _Built:
    """The tables built from the catalog's rows, for the last few requests of this process.

    SQLAlchemy caches a compiled statement under a key that holds its tables' identity, so
    new ``Table`` objects for every trip meant every statement on them compiled again in
    each trip of a long-lived process (a warm Lambda function, a worker), and stale entries
    filling the engine's cache. Built from the same rows (compared whole), the tables are
    the same, so the objects of the last time serve again. They are only read after they
    are built. They are kept per database (its URL, without the password): two databases'
    tables of one name and definition, the two sides of a copy, stay two ``Table`` objects.
    """

    _KEEP = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[Any, ...], tuple[list[tuple[Any, ...]], Tables]] = (
            OrderedDict()
        )

    def tables(
        self,
        conn: sa.Connection,
        schema: str | None,
        names: list[str],
        rows: list[tuple[Any, ...]],
        build: Build,
    ) -> Tables:
        dialect = conn.dialect
        database = conn.engine.url.render_as_string(hide_password=True)  # driver included
        server = (dialect.server_version_info, getattr(dialect, "is_mariadb", None))
        key = (database, server, schema, tuple(names))
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == rows:
                self._kept.move_to_end(key)
                return dict(kept[1])  # the tables kept; the mapping the caller's own
        metadata = sa.MetaData()
        for found in build(dialect, rows):
            _add(metadata, schema, found)
        tables = dict(metadata.tables)
        with self._lock:
            self._kept[key] = (rows, tables)
            self._kept.move_to_end(key)
            while len(self._kept) > self._KEEP:
                self._kept.popitem(last=False)
        return dict(tables)


_built = _Built()


def _add(metadata: sa.MetaData, schema: str | None, found: Found) -> None:
    table = sa.Table(found.name, metadata, *found.columns, schema=schema)
    if found.primary_key:
        table.append_constraint(sa.PrimaryKeyConstraint(*found.primary_key))
    for name, columns in found.uniques:
        table.append_constraint(sa.UniqueConstraint(*columns, name=name))
    for name, columns, unique in found.indexes:
        sa.Index(name, *(table.c[c] for c in columns), unique=unique)
