"""MySQL's and MariaDB's catalog (``information_schema``) in one statement, for PyMySQL and
mysqlclient."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from rowferry.dialects.catalog_readers import (
    CatalogReader,
    Found,
    NotPlain,
    TypeMaker,
    make_column,
)

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


def _mysql(dialect: sa.Dialect, rows: list[tuple[Any, ...]]) -> list[Found]:
    # MariaDB's SHOW CREATE TABLE, which SQLAlchemy reads, names the character set and the
    # collation of a column whose collation is not the table's (a JSON column: LONGTEXT
    # COLLATE utf8mb4_bin); MySQL's follows other rules, left to SQLAlchemy
    mariadb = bool(getattr(dialect, "is_mariadb", False))
    tables: dict[str, Found] = {}
    views: set[str] = set()
    keys: dict[tuple[str, str], tuple[bool, list[str]]] = {}
    table_collation: str | None = None
    for row in rows:
        table, part, _, name, what, flag, default, unusual, charset, collation = row
        if unusual:
            raise NotPlain(f"{name} {unusual}")
        if part == -1:  # name: the table's type; collation: its default collation
            if name != "BASE TABLE":
                views.add(table)
            table_collation = collation
        elif part == 1:  # what: a column of index ``name``; flag: unique
            keys.setdefault((table, name), (bool(flag), []))[1].append(what)
        elif table not in views:
            own = collation is not None and collation != table_collation
            if own and not mariadb:
                raise NotPlain(f"{name} has its own collation")
            default = None if default == "NULL" else default  # MariaDB's "DEFAULT NULL"
            collated = {"charset": charset, "collation": collation} if own else {}
            kind = _mysql_type(dialect, what, **collated)
            tables.setdefault(table, Found(table)).columns.append(
                make_column(name, kind, flag, default)
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
    names: dict[str, TypeMaker] = getattr(dialect, "ischema_names", {})
    kind = names.get(match.group(1)) if match else None
    if match is None or kind is None or match.group(1) in ("enum", "set"):
        raise NotPlain(column_type)
    args = [int(a) for a in (match.group(2) or "").split(",") if a]
    options: dict[str, Any] = {flag: True for flag in match.group(3).split()}
    if match.group(1) in _MYSQL_TIMES and args:
        options["fsp"] = args.pop(0)
    options.update((k, v) for k, v in collated.items() if v is not None)
    return kind(*args, **options)


READER = CatalogReader(_mysql_rows, _mysql)
