"""PostgreSQL's catalog (``pg_catalog``) in one statement, for psycopg."""

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
        raise NotPlain("PostgreSQL before 11 has no pg_index.indnkeyatts")
    # a parameter per name: psycopg's first text array would cost compiling a regular expression
    marks = ", ".join(f"%(t{i})s" for i in range(len(names)))
    sql = _PG_STATEMENT.format(names=marks, schema=_PG_IN_SCHEMA if schema else _PG_VISIBLE)
    params = {f"t{i}": name for i, name in enumerate(names)}
    return conn.exec_driver_sql(sql, {**params, "schema": schema}).all()


def _postgresql(dialect: sa.Dialect, rows: list[tuple[Any, ...]]) -> list[Found]:
    return [_pg_table(dialect, *row) for row in rows]


def _pg_table(
    dialect: sa.Dialect, name: str, columns: list[dict[str, Any]], indexes: list[dict[str, Any]]
) -> Found:
    found = Found(name, [_pg_column(dialect, c) for c in columns])
    for index in indexes or []:
        if not index["plain"] or index["constraint"] not in (None, "p", "u"):
            raise NotPlain(f"index {index['name']}")
        if index["primary"]:
            found.primary_key = index["columns"]
        elif index["constraint"] == "u":
            found.uniques.append((index["name"], index["columns"]))
        else:
            found.indexes.append((index["name"], index["columns"], index["unique"]))
    return found


def _pg_column(dialect: sa.Dialect, found: dict[str, Any]) -> sa.Column[Any]:
    if found["collated"] or found["generated"]:
        raise NotPlain(f"column {found['name']}")
    kind = _pg_type(dialect, found["type"])
    identity = [sa.Identity(always=found["identity"] == "a")] if found["identity"] else []
    return make_column(found["name"], kind, found["not_null"], found["default"], *identity)


def _pg_type(dialect: sa.Dialect, format_type: str) -> sa.types.TypeEngine[Any]:
    """The type SQLAlchemy's reflection makes of ``format_type``."""
    match = _PG_ARGS.search(format_type)
    args = [a.strip() for a in match.group(1).split(",")] if match else []
    base = _PG_ARGS.sub("", format_type)
    names: dict[str, TypeMaker] = getattr(dialect, "ischema_names", {})
    kind = names.get(base)
    if kind is None or base.startswith(_PG_NOT_PLAIN):
        raise NotPlain(format_type)
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
    raise NotPlain(format_type)


READER = CatalogReader(_pg_rows, _postgresql)
