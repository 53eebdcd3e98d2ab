"""The server-side limit of SCENARIO.md: ``INSERT … SELECT`` building each snapshot in SQL.

One statement per dialect renders the same document as rowferry's Python path
(``rowferry.documents``): the order's columns, ``patient`` as an object or null, and ``items``,
``prescriptions``, ``payments``, ``events`` as arrays ordered by id (``[]`` when empty).

The statement is a query over ``orders`` with one correlated scalar subquery per relation in its
SELECT list, so every plan drives from the orders key range (on MariaDB at 1,000,000 orders a join
that let the optimizer start from ``patients`` ran 8x slower). How each dialect renders a value:

- decimal: the column itself on MariaDB and PostgreSQL (a JSON number with the column's scale:
  12.50 stays 12.50); ``json(printf('%.Nf', x))`` on SQLite (N: the column's scale);
- datetime: ``DATE_FORMAT(x, '%Y-%m-%dT%H:%i:%s.%f')`` on MariaDB,
  ``to_char(x, 'YYYY-MM-DD"T"HH24:MI:SS.US')`` on PostgreSQL, ``replace(x, ' ', 'T')`` on SQLite;
- date: ``DATE_FORMAT(x, '%Y-%m-%d')``, ``to_char(x, 'YYYY-MM-DD')``, the stored text on SQLite;
- object: ``JSON_OBJECT``, ``json_build_object``, ``json_object``;
- array: ``COALESCE((SELECT JSON_ARRAYAGG(… ORDER BY id) …), JSON_ARRAY())``,
  ``COALESCE((SELECT json_agg(… ORDER BY id) …), '[]'::json)``, and on SQLite
  ``json((SELECT json_group_array(json(x)) FROM (SELECT … AS x … ORDER BY id)))``.

SQLite keeps DECIMAL(10,2) values as REAL (12.50 is stored as 12.5): ``printf('%.2f')`` gives back
the two digits, exact while the value has at most 15 significant digits. Its datetimes are the
text SQLAlchemy wrote (``YYYY-MM-DD HH:MM:SS.ffffff``, always six digits), so only the space
changes. Subquery results are wrapped in ``json(…)`` there so that they nest as JSON, not as
strings.

On MariaDB 10.11 a JSON value from a scalar subquery nests as JSON, and so does
``COALESCE(subquery, JSON_ARRAY())``; ``IFNULL(subquery, '[]')`` would nest a quoted string.
``JSON_ARRAYAGG`` is cut at ``group_concat_max_len`` bytes (1 MiB by default) with only a
warning, leaving invalid JSON (``[{…},]``); an order's lists are far below that here.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from rowferry.demo import workload

#: Relation name in the document -> child table (all are HasMany on ``order_id``, by ``id``).
RELATIONS: dict[str, str] = {
    "items": "order_items",
    "prescriptions": "prescriptions",
    "payments": "payments",
    "events": "order_status_events",
}
TARGET = workload.TARGET_TABLE


class JsonSql:
    """How one dialect renders values, objects and arrays; subclasses per dialect."""

    def __init__(self, quote: Callable[[str], str]) -> None:
        self.quote = quote

    def value(self, column: sa.Column[object], alias: str) -> str:
        ref = f"{alias}.{self.quote(column.name)}"
        if isinstance(column.type, sa.Numeric) and not isinstance(column.type, sa.Float):
            return self.decimal(ref, column.type.scale or 0, column.nullable or False)
        if isinstance(column.type, sa.DateTime):
            return self.datetime(ref)
        if isinstance(column.type, sa.Date):
            return self.date(ref)
        return ref

    def decimal(self, ref: str, scale: int, nullable: bool) -> str:
        return ref

    def datetime(self, ref: str) -> str:
        raise NotImplementedError

    def date(self, ref: str) -> str:
        raise NotImplementedError

    def obj(self, pairs: list[tuple[str, str]]) -> str:
        raise NotImplementedError

    def array(self, element: str, table: str, alias: str, where: str) -> str:
        """The JSON array of ``element`` over ``table`` rows matching ``where``, by id."""
        raise NotImplementedError

    def nested(self, scalar_subquery: str) -> str:
        """A JSON value coming out of a scalar subquery, ready to nest in an object."""
        return scalar_subquery


class MariaDBJson(JsonSql):
    def datetime(self, ref: str) -> str:
        return f"DATE_FORMAT({ref}, '%Y-%m-%dT%H:%i:%s.%f')"

    def date(self, ref: str) -> str:
        return f"DATE_FORMAT({ref}, '%Y-%m-%d')"

    def obj(self, pairs: list[tuple[str, str]]) -> str:
        return "JSON_OBJECT(" + ", ".join(f"'{k}', {v}" for k, v in pairs) + ")"

    def array(self, element: str, table: str, alias: str, where: str) -> str:
        # COALESCE(…, JSON_ARRAY()) keeps the JSON type (IFNULL(…, '[]') would nest a string).
        return (
            f"COALESCE((SELECT JSON_ARRAYAGG({element} ORDER BY {alias}.id) "
            f"FROM {self.quote(table)} {alias} WHERE {where}), JSON_ARRAY())"
        )


class PostgreSQLJson(JsonSql):
    def datetime(self, ref: str) -> str:
        return f"to_char({ref}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"

    def date(self, ref: str) -> str:
        return f"to_char({ref}, 'YYYY-MM-DD')"

    def obj(self, pairs: list[tuple[str, str]]) -> str:
        return "json_build_object(" + ", ".join(f"'{k}', {v}" for k, v in pairs) + ")"

    def array(self, element: str, table: str, alias: str, where: str) -> str:
        return (
            f"COALESCE((SELECT json_agg({element} ORDER BY {alias}.id) "
            f"FROM {self.quote(table)} {alias} WHERE {where}), '[]'::json)"
        )


class SQLiteJson(JsonSql):
    def decimal(self, ref: str, scale: int, nullable: bool) -> str:
        text = f"json(printf('%.{scale}f', {ref}))"
        # printf('%.2f', NULL) is '0.00', not NULL
        return f"CASE WHEN {ref} IS NULL THEN NULL ELSE {text} END" if nullable else text

    def datetime(self, ref: str) -> str:
        return f"replace({ref}, ' ', 'T')"

    def date(self, ref: str) -> str:
        return ref

    def obj(self, pairs: list[tuple[str, str]]) -> str:
        return "json_object(" + ", ".join(f"'{k}', {v}" for k, v in pairs) + ")"

    def array(self, element: str, table: str, alias: str, where: str) -> str:
        # SQLite 3.40 has no ORDER BY inside aggregates: aggregate an ordered subquery (an
        # aggregate over a subquery with ORDER BY is not flattened, so the order holds).
        return (
            f"json((SELECT json_group_array(json(x)) FROM (SELECT {element} AS x "
            f"FROM {self.quote(table)} {alias} WHERE {where} ORDER BY {alias}.id)))"
        )

    def nested(self, scalar_subquery: str) -> str:
        return f"json({scalar_subquery})"


def json_sql(dialect: sa.Dialect) -> JsonSql:
    quote = dialect.identifier_preparer.quote
    kinds: dict[str, type[JsonSql]] = {
        "mysql": MariaDBJson,
        "mariadb": MariaDBJson,
        "postgresql": PostgreSQLJson,
        "sqlite": SQLiteJson,
    }
    if dialect.name not in kinds:
        raise ValueError(f"no limit SQL for dialect {dialect.name!r}")
    return kinds[dialect.name](quote)


def _row_object(js: JsonSql, table: str, alias: str) -> str:
    columns = workload.metadata.tables[table].columns
    return js.obj([(c.name, js.value(c, alias)) for c in columns])


def snapshot_sql(js: JsonSql) -> str:
    """The snapshot document of order ``o`` as one SQL expression."""
    orders = workload.metadata.tables["orders"]
    pairs = [(c.name, js.value(c, "o")) for c in orders.columns]
    patient = f"(SELECT {_row_object(js, 'patients', 'p')} FROM {js.quote('patients')} p " + (
        "WHERE p.id = o.patient_id)"
    )
    pairs.append(("patient", js.nested(patient)))
    for name, table in RELATIONS.items():
        element = _row_object(js, table, "c")
        pairs.append((name, js.array(element, table, "c", "c.order_id = o.id")))
    return js.obj(pairs)


def final_statuses() -> str:
    return ", ".join(f"'{s}'" for s in workload.FINAL_STATUSES)


def insert_select(dialect: sa.Dialect, *, key_range: bool) -> str:
    """``INSERT INTO order_snapshots … SELECT`` for every finished order, or (``key_range``)
    for those with ``:lo < id <= :hi`` (bound parameters of ``sqlalchemy.text``)."""
    js = json_sql(dialect)
    where = f"o.status IN ({final_statuses()})"
    if key_range:
        where += " AND o.id > :lo AND o.id <= :hi"
    return (
        f"INSERT INTO {js.quote(TARGET)} (order_id, status, snapshot) "
        f"SELECT o.id, o.status, {snapshot_sql(js)} "
        f"FROM {js.quote('orders')} o WHERE {where}"
    )


def next_bound_sql(chunk: int) -> str:
    """The id of the ``chunk``-th finished order after ``:last`` (NULL when none is left; the
    last chunk may be shorter)."""
    return (
        f"SELECT MAX(id) FROM (SELECT id FROM orders WHERE status IN ({final_statuses()}) "
        f"AND id > :last ORDER BY id LIMIT {chunk}) t"
    )
