"""Table definitions read from the catalog in one hand-written statement.

SQLAlchemy's reflection of a migration's tables costs a new engine dearly, and every
``rowferry run`` and every Lambda invocation makes a new engine:
- on PostgreSQL it builds eight catalog queries with its Core and compiles them, tens of
  milliseconds of CPU for a cold process;
- on MySQL/MariaDB it sends one ``SHOW CREATE TABLE`` per table and parses the text with some
  forty regular expressions, compiled once per process;
- on SQLite it sends five PRAGMAs per table.

:func:`read` builds the ``Table`` objects from one statement of plain SQL instead (PostgreSQL's
catalog, ``information_schema`` on MySQL/MariaDB, SQLite's table-valued pragmas), with what
rowferry reads from a reflected table: the columns, their types, nullability and defaults, the
primary key, the unique constraints and the indexes. It only does so for tables it fully
understands: a column type it does not know the reflection of (arrays, enums, sets, domains,
intervals with fields, types of extensions), a generated column, a column with its own
collation (except on MariaDB), an index on an expression, on a prefix or with a ``WHERE``, a
full-text, spatial or exclusion index, or a table in an attached SQLite database make it return
``False``, and SQLAlchemy reflects those tables as before. The types are made as SQLAlchemy's
own reflection makes them; ``tests/test_catalog.py`` compares the two table by table on every
database, so a SQLAlchemy that reflects differently fails there.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

_TypeMaker = type[sa.types.TypeEngine[Any]]
#: tables by key, as ``MetaData.tables`` has them
Tables = dict[str, sa.Table]


@dataclass
class _Found:
    """One table as the catalog describes it."""

    name: str
    columns: list[sa.Column[Any]] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    #: (name, columns) of unique constraints
    uniques: list[tuple[str | None, list[str]]] = field(default_factory=list)
    #: (name, columns, unique) of the other indexes
    indexes: list[tuple[str, list[str], bool]] = field(default_factory=list)


class _NotPlain(Exception):
    """A table the catalog reader leaves to SQLAlchemy (control flow inside this module: it
    never leaves :func:`read`)."""


def read(conn: sa.Connection, schema: str | None, names: Sequence[str]) -> Tables | None:
    """The tables of ``names`` that exist, by key (``name``, or ``schema.name`` with a
    ``schema``); None when one of them is not plain enough or the database has no reader here.

    The catalog is read every time; when it says what it said the last time for the same
    tables of the same database in this process, the ``Table`` objects built then are
    returned again (see :class:`_Built`)."""
    reader = _READERS.get((conn.dialect.name, conn.dialect.driver))
    if reader is None:
        return None
    names = list(dict.fromkeys(names))
    fetch, build = reader
    try:
        rows = [tuple(row) for row in fetch(conn, schema, names)] if names else []
        return _built.tables(conn, schema, names, rows, build)
    except _NotPlain:
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
        build: _Builder,
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


def _add(metadata: sa.MetaData, schema: str | None, found: _Found) -> None:
    table = sa.Table(found.name, metadata, *found.columns, schema=schema)
    if found.primary_key:
        table.append_constraint(sa.PrimaryKeyConstraint(*found.primary_key))
    for name, columns in found.uniques:
        table.append_constraint(sa.UniqueConstraint(*columns, name=name))
    for name, columns, unique in found.indexes:
        sa.Index(name, *(table.c[c] for c in columns), unique=unique)


def _column(
    name: str, kind: sa.types.TypeEngine[Any], not_null: Any, default: Any, *extra: Any
) -> sa.Column[Any]:
    return sa.Column(
        name,
        kind,
        *extra,
        nullable=not not_null,
        server_default=sa.text(str(default)) if default is not None else None,
    )


# PostgreSQL ---------------------------------------------------------------------------------

_PG_STATEMENT = """
SELECT c.relname,
  (SELECT json_agg(json_build_object(
       'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
       'not_null', a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid),
       'identity', a.attidentity, 'generated', a.attgenerated,
       'collated', a.attcollation <> (SELECT t.typcollation FROM pg_catalog.pg_type t
                                      WHERE t.oid = a.atttypid)) ORDER BY a.attnum)
   FROM pg_catalog.pg_attribute a
   LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT json_agg(json_build_object(
       'name', i.relname, 'unique', x.indisunique, 'primary', x.indisprimary,
       'plain', x.indexprs IS NULL AND x.indpred IS NULL, 'constraint', con.contype,
       'columns', (SELECT json_agg(a.attname ORDER BY k.n)
                   FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                   WHERE k.n <= x.indnkeyatts)) ORDER BY i.relname)
   FROM pg_catalog.pg_index x
   JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
   LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = c.oid
   WHERE x.indrelid = c.oid)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relname IN ({names}) AND {schema}
"""
_PG_IN_SCHEMA = "n.nspname = %(schema)s"
_PG_VISIBLE = "pg_catalog.pg_table_is_visible(c.oid) AND n.nspname <> 'pg_catalog'"
_PG_ARGS = re.compile(r"\((.*)\)")
_WITH_TIME_ZONE = frozenset({"timestamp with time zone", "time with time zone"})
_WITHOUT_TIME_ZONE = frozenset({"timestamp without time zone", "time without time zone", "time"})
#: format_type() names SQLAlchemy reads more into than a plain type
_PG_NOT_PLAIN = ("interval", "bit varying")


def _pg_rows(conn: sa.Connection, schema: str | None, names: list[str]) -> Sequence[Any]:
    if (conn.dialect.server_version_info or (0,)) < (11,):
        raise _NotPlain("PostgreSQL before 11 has no pg_index.indnkeyatts")
    # a parameter per name: psycopg's first text array would cost compiling a regular expression
    marks = ", ".join(f"%(t{i})s" for i in range(len(names)))
    sql = _PG_STATEMENT.format(names=marks, schema=_PG_IN_SCHEMA if schema else _PG_VISIBLE)
    params = {f"t{i}": name for i, name in enumerate(names)}
    return conn.exec_driver_sql(sql, {**params, "schema": schema}).all()


def _postgresql(dialect: sa.Dialect, rows: list[tuple[Any, ...]]) -> list[_Found]:
    return [_pg_table(dialect, *row) for row in rows]


def _pg_table(
    dialect: sa.Dialect, name: str, columns: list[dict[str, Any]], indexes: list[dict[str, Any]]
) -> _Found:
    found = _Found(name, [_pg_column(dialect, c) for c in columns])
    for index in indexes or []:
        if not index["plain"] or index["constraint"] not in (None, "p", "u"):
            raise _NotPlain(f"index {index['name']}")
        if index["primary"]:
            found.primary_key = index["columns"]
        elif index["constraint"] == "u":
            found.uniques.append((index["name"], index["columns"]))
        else:
            found.indexes.append((index["name"], index["columns"], index["unique"]))
    return found


def _pg_column(dialect: sa.Dialect, found: dict[str, Any]) -> sa.Column[Any]:
    if found["collated"] or found["generated"]:
        raise _NotPlain(f"column {found['name']}")
    kind = _pg_type(dialect, found["type"])
    identity = [sa.Identity(always=found["identity"] == "a")] if found["identity"] else []
    return _column(found["name"], kind, found["not_null"], found["default"], *identity)


def _pg_type(dialect: sa.Dialect, format_type: str) -> sa.types.TypeEngine[Any]:
    """The type SQLAlchemy's reflection makes of ``format_type``."""
    match = _PG_ARGS.search(format_type)
    args = [a.strip() for a in match.group(1).split(",")] if match else []
    base = _PG_ARGS.sub("", format_type)
    names: dict[str, _TypeMaker] = getattr(dialect, "ischema_names", {})
    kind = names.get(base)
    if kind is None or base.startswith(_PG_NOT_PLAIN):
        raise _NotPlain(format_type)
    if base == "numeric":
        return kind(*map(int, args)) if len(args) == 2 else kind()
    if base == "double precision":
        return kind(53)  # type: ignore[call-arg]
    if base in _WITH_TIME_ZONE or base in _WITHOUT_TIME_ZONE:
        precision = {"precision": int(args[0])} if args else {}
        return kind(timezone=base in _WITH_TIME_ZONE, **precision)  # type: ignore[call-arg]
    if not args:
        return kind()
    if len(args) == 1 and args[0].isdigit():
        return kind(int(args[0]))  # type: ignore[call-arg]
    raise _NotPlain(format_type)


# SQLite -------------------------------------------------------------------------------------

_SQLITE_STATEMENT = """
SELECT m.name, 0, p.cid, p.name, p.type, p."notnull", p.dflt_value, p.pk, p.hidden
FROM sqlite_master AS m JOIN pragma_table_xinfo(m.name) AS p
WHERE m.type = 'table' AND m.name IN ({names})
UNION ALL
SELECT m.name, 1, i.seq, i.name, i.origin, i."unique", i.partial, x.seqno, x.name
FROM sqlite_master AS m JOIN pragma_index_list(m.name) AS i JOIN pragma_index_xinfo(i.name) AS x
WHERE m.type = 'table' AND m.name IN ({names}) AND x.key
ORDER BY 1, 2, 3, 8
"""
_SQLITE_TYPE = re.compile(r"([\w ]+)(\(.*?\))?")


def _sqlite_rows(conn: sa.Connection, schema: str | None, names: list[str]) -> Sequence[Any]:
    if schema is not None:
        raise _NotPlain("an attached database")
    if sqlite3.sqlite_version_info < (3, 26):
        raise _NotPlain("SQLite before 3.26 has no pragma_table_xinfo()")
    marks = ", ".join("?" * len(names))
    return conn.exec_driver_sql(_SQLITE_STATEMENT.format(names=marks), tuple(names * 2)).all()


def _sqlite(dialect: sa.Dialect, rows: list[tuple[Any, ...]]) -> list[_Found]:
    tables: dict[str, _Found] = {}
    keys: dict[str, list[tuple[int, str]]] = {}
    indexes: dict[tuple[str, str], tuple[str, bool, list[str]]] = {}
    for table, is_index, _, name, kind, flag, extra, position, last in rows:
        found = tables.setdefault(table, _Found(table))
        if not is_index:
            if last:  # hidden: generated or virtual
                raise _NotPlain(f"column {name}")
            found.columns.append(_column(name, _sqlite_type(dialect, kind), flag, extra))
            if position:
                keys.setdefault(table, []).append((position, name))
        elif extra or last is None:  # partial, or on an expression
            raise _NotPlain(f"index {name}")
        else:
            indexes.setdefault((table, name), (kind, bool(flag), []))[2].append(last)
    for table, key in keys.items():
        tables[table].primary_key = [name for _, name in sorted(key)]
    for (table, name), (origin, unique, columns) in indexes.items():
        if origin == "u":
            tables[table].uniques.append((None, columns))
        elif origin == "c":
            tables[table].indexes.append((name, columns, unique))
    return list(tables.values())


def _sqlite_type(dialect: sa.Dialect, declared: str) -> sa.types.TypeEngine[Any]:
    """The type SQLAlchemy's reflection makes of a declared type (its affinity rules)."""
    match = _SQLITE_TYPE.match(declared.upper())
    base, args = (match.group(1), match.group(2)) if match else ("", None)
    names: dict[str, _TypeMaker] = getattr(dialect, "ischema_names", {})
    kind: _TypeMaker = names.get(base) or _sqlite_affinity(base)
    try:
        return kind(*(int(a) for a in re.findall(r"\d+", args or "")))
    except TypeError as exc:
        raise _NotPlain(declared) from exc


def _sqlite_affinity(base: str) -> _TypeMaker:
    if "INT" in base:
        return sa.INTEGER
    if "CHAR" in base or "CLOB" in base or "TEXT" in base:
        return sa.TEXT
    if "BLOB" in base or not base:
        return sa.types.NullType
    if "REAL" in base or "FLOA" in base or "DOUB" in base:
        return sa.REAL
    return sa.NUMERIC


# MySQL / MariaDB ----------------------------------------------------------------------------

#: One table's part: its type and collation (``-1``), its columns (``0``), its indexes'
#: columns (``1``). Each names its table with ``=``, which MariaDB and MySQL answer from that
#: table's definition alone; with ``IN (...)`` or a join they read every table of the
#: database, or of the server (its EXPLAIN says "Scanned 1 database", "Scanned all databases").
_MYSQL_TABLE = """
SELECT TABLE_NAME, -1, 0, TABLE_TYPE, NULL, 0, NULL, '', NULL, TABLE_COLLATION
FROM information_schema.TABLES WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = {name}
UNION ALL
SELECT TABLE_NAME, 0, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE = 'NO',
       COLUMN_DEFAULT, IF(COALESCE(GENERATION_EXPRESSION, '') <> '', 'is generated', ''),
       CHARACTER_SET_NAME, COLLATION_NAME
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = {name}
UNION ALL
SELECT TABLE_NAME, 1, SEQ_IN_INDEX, INDEX_NAME, COLUMN_NAME, NON_UNIQUE = 0, NULL,
       CONCAT_WS(' ',
         IF(COLUMN_NAME IS NULL, 'is on an expression', NULL),
         IF(SUB_PART IS NOT NULL, 'is on a prefix', NULL),
         IF(INDEX_TYPE <> 'BTREE', CONCAT('is ', INDEX_TYPE), NULL)),
       NULL, NULL
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = {name}
"""
_MYSQL_TYPE = re.compile(r"(\w+)(?:\(([\d,]*)\))?((?: unsigned| zerofill)*)$")
_MYSQL_TIMES = frozenset({"datetime", "time", "timestamp"})


def _mysql_rows(conn: sa.Connection, schema: str | None, names: list[str]) -> Sequence[Any]:
    where = "%(schema)s" if schema else "DATABASE()"
    parts = [_MYSQL_TABLE.format(schema=where, name=f"%(t{i})s") for i in range(len(names))]
    sql = " UNION ALL ".join(parts) + " ORDER BY 1, 2, 3"
    params: dict[str, Any] = {f"t{i}": name for i, name in enumerate(names)}
    params["schema"] = schema
    return conn.exec_driver_sql(sql, params).all()


def _mysql(dialect: sa.Dialect, rows: list[tuple[Any, ...]]) -> list[_Found]:
    # MariaDB's SHOW CREATE TABLE, which SQLAlchemy reads, names the character set and the
    # collation of a column whose collation is not the table's (a JSON column: LONGTEXT
    # COLLATE utf8mb4_bin); MySQL's follows other rules, left to SQLAlchemy
    mariadb = bool(getattr(dialect, "is_mariadb", False))
    tables: dict[str, _Found] = {}
    views: set[str] = set()
    keys: dict[tuple[str, str], tuple[bool, list[str]]] = {}
    table_collation: str | None = None
    for row in rows:
        table, part, _, name, what, flag, default, unusual, charset, collation = row
        if unusual:
            raise _NotPlain(f"{name} {unusual}")
        if part == -1:  # name: the table's type; collation: its default collation
            if name != "BASE TABLE":
                views.add(table)
            table_collation = collation
        elif part == 1:  # what: a column of index ``name``; flag: unique
            keys.setdefault((table, name), (bool(flag), []))[1].append(what)
        elif table not in views:
            own = collation is not None and collation != table_collation
            if own and not mariadb:
                raise _NotPlain(f"{name} has its own collation")
            default = None if default == "NULL" else default  # MariaDB's "DEFAULT NULL"
            collated = {"charset": charset, "collation": collation} if own else {}
            kind = _mysql_type(dialect, what, **collated)
            tables.setdefault(table, _Found(table)).columns.append(
                _column(name, kind, flag, default)
            )
    for (table, name), (unique, columns) in keys.items():
        if table not in tables:
            continue
        if name == "PRIMARY":
            tables[table].primary_key = columns
        elif unique:
            tables[table].uniques.append((name, columns))
        else:
            tables[table].indexes.append((name, columns, False))
    return list(tables.values())


def _mysql_type(
    dialect: sa.Dialect, column_type: str, **collated: str | None
) -> sa.types.TypeEngine[Any]:
    """The type SQLAlchemy's reflection makes of ``COLUMN_TYPE`` (``int(11) unsigned``,
    ``decimal(10,2)``, ``datetime(6)``; enums and sets are left to SQLAlchemy), with the
    column's own character set and collation (``collated``) if it has them."""
    match = _MYSQL_TYPE.match(column_type.lower())
    names: dict[str, _TypeMaker] = getattr(dialect, "ischema_names", {})
    kind = names.get(match.group(1)) if match else None
    if match is None or kind is None or match.group(1) in ("enum", "set"):
        raise _NotPlain(column_type)
    args = [int(a) for a in (match.group(2) or "").split(",") if a]
    options: dict[str, Any] = {flag: True for flag in match.group(3).split()}
    if match.group(1) in _MYSQL_TIMES and args:
        options["fsp"] = args.pop(0)
    options.update((k, v) for k, v in collated.items() if v is not None)
    return kind(*args, **options)


_Fetcher = Callable[[sa.Connection, "str | None", list[str]], Sequence[Any]]
_Builder = Callable[[sa.Dialect, list[tuple[Any, ...]]], list[_Found]]
_READERS: dict[tuple[str, str], tuple[_Fetcher, _Builder]] = {
    ("postgresql", "psycopg"): (_pg_rows, _postgresql),
    ("sqlite", "pysqlite"): (_sqlite_rows, _sqlite),
    **{
        (name, driver): (_mysql_rows, _mysql)
        for name in ("mysql", "mariadb")
        for driver in ("pymysql", "mysqldb")
    },
}
