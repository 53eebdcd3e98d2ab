"""SQLite's catalog (its table-valued pragmas) in one statement, for the standard library's
driver."""

from __future__ import annotations

import re
import sqlite3
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
        raise NotPlain("an attached database")
    if sqlite3.sqlite_version_info < (3, 26):
        raise NotPlain("SQLite before 3.26 has no pragma_table_xinfo()")
    marks = ", ".join("?" * len(names))
    return conn.exec_driver_sql(_SQLITE_STATEMENT.format(names=marks), tuple(names * 2)).all()


def _sqlite(dialect: sa.Dialect, rows: list[tuple[Any, ...]]) -> list[Found]:
    tables: dict[str, Found] = {}
    keys: dict[str, list[tuple[int, str]]] = {}
    indexes: dict[tuple[str, str], tuple[str, bool, list[str]]] = {}
    for table, is_index, _, name, kind, flag, extra, position, last in rows:
        found = tables.setdefault(table, Found(table))
        if not is_index:
            if last:  # hidden: generated or virtual
                raise NotPlain(f"column {name}")
            found.columns.append(make_column(name, _sqlite_type(dialect, kind), flag, extra))
            if position:
                keys.setdefault(table, []).append((position, name))
        elif extra or last is None:  # partial, or on an expression
            raise NotPlain(f"index {name}")
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
    names: dict[str, TypeMaker] = getattr(dialect, "ischema_names", {})
    kind: TypeMaker = names.get(base) or _sqlite_affinity(base)
    try:
        return kind(*(int(a) for a in re.findall(r"\d+", args or "")))
    except TypeError as exc:
        raise NotPlain(declared) from exc


def _sqlite_affinity(base: str) -> TypeMaker:
    if "INT" in base:
        return sa.INTEGER
    if "CHAR" in base or "CLOB" in base or "TEXT" in base:
        return sa.TEXT
    if "BLOB" in base or not base:
        return sa.types.NullType
    if "REAL" in base or "FLOA" in base or "DOUB" in base:
        return sa.REAL
    return sa.NUMERIC


READER = CatalogReader(_sqlite_rows, _sqlite)
