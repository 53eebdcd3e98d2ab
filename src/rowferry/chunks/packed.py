"""Related rows packed into JSON by MariaDB: one result row per parent key, not one per child.

PyMySQL decodes every field of every row in Python, and a chunk's related rows are most of its
rows. MariaDB can instead send, for each lookup key, one JSON array of the child rows (each a
JSON array of its columns), which orjson parses in C: about half the client CPU of the plain
query (figures in docs/drivers.md).

The values are exactly those of the plain query (:func:`rowferry.chunks.read.relation_select`):
each one travels as the text the plain query would have carried (``CONCAT(col)``; integers as
JSON numbers, binary values in hex) and is decoded by the converter PyMySQL applies to that
column type, then by the column type's SQLAlchemy result processor, as the plain path does.
A group that comes back incomplete (MariaDB cuts an aggregate that outgrows
``max_allowed_packet`` to NULL with a mere warning) is detected by its ``COUNT(*)``, and the
relation is read again with the plain query.

Only on MariaDB 10.5 and later (MySQL 8 has no ORDER BY inside ``JSON_ARRAYAGG``) through
PyMySQL, and only for relations whose every column has a type listed in :func:`_codec`.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.sqltypes import _Binary

from rowferry.dialects.exact_types import declared
from rowferry.dialects.mysql import int_literals
from rowferry.dialects.sql_documents import ordered_json_agg
from rowferry.migration.spec import Row
from rowferry.schema.resolve import RelationPlan

Decode = Callable[[Any], Any]

#: lifts MariaDB's cut of JSON_ARRAYAGG (group_concat_max_len, 1 MiB by default) for one
#: statement, without a statement of its own
_LIFT = "SET STATEMENT group_concat_max_len = {} FOR "
_NO_LIMIT = 4294967295
#: where a packed statement's integer keys are written in
_KEYS_HERE = "rf_packed_keys_here"


class Incomplete(Exception):
    """A packed group did not hold every row: read the relation with the plain query."""


@dataclass(frozen=True)
class Packing:
    """How one relation's rows are packed by the server and unpacked here."""

    rel: RelationPlan
    names: tuple[str, ...]
    fields: tuple[sa.ColumnElement[Any], ...]
    #: (position, decode) of the columns whose JSON value is not already the driver's value
    decoders: tuple[tuple[int, Decode], ...]
    #: the longest packed group MariaDB may build (group_concat_max_len; the real bound is
    #: max_allowed_packet)
    max_len: int = _NO_LIMIT

    def select(self, match: sa.ColumnElement[bool]) -> sa.Select[int, Any]:
        """The packed rows of the child rows that ``match`` (see ``reading.lookup_match``)."""
        lookup = [self.rel.table.c[c] for c in self.rel.child_columns]
        rows = ordered_json_agg(sa.func.JSON_ARRAY(*self.fields), *self.rel.order_by)
        return sa.select(sa.func.count(), rows).where(match).group_by(*lookup).order_by(*lookup)

    #: the packed statement compiled once per SQLAlchemy dialect: as text split where integer
    #: keys are written in, and with the keys as an expanding parameter
    _compiled: dict[tuple[int, bool], tuple[str, str] | SQLCompiler | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def fetch(self, conn: sa.Connection, keys: Sequence[tuple[Any, ...]]) -> list[Row]:
        """The child rows whose lookup columns hold one of ``keys``, in the plain query's order.

        The statement is compiled once; each call writes its keys in: as integer literals where
        they are all integers (see :func:`rowferry.dialects.mysql.int_literals`), else as
        parameters."""
        single = len(self.rel.child_columns) == 1
        values = [k[0] for k in keys] if single else list(keys)
        params: dict[str, Any] = {}
        split = self._split(conn.dialect) if single and int_literals(values) else None
        if split is not None:
            sql = split[0] + ", ".join(map(str, values)) + split[1]
        else:
            expanded = self._expanding(conn.dialect).construct_expanded_state({"rf_keys": values})
            sql, params = expanded.statement, dict(expanded.parameters)
        sql = _LIFT.format(int(self.max_len)) + sql
        return self.unpack(conn.exec_driver_sql(sql, params).all())

    def _split(self, sa_dialect: sa.Dialect) -> tuple[str, str] | None:
        """The statement's text before and after its list of keys (``None`` if the statement
        has parameters of its own: then the keys go in as parameters too)."""
        key = (id(sa_dialect), True)
        if key not in self._compiled:
            column = self.rel.table.c[self.rel.child_columns[0]]
            match = column.in_([sa.literal_column(_KEYS_HERE)])
            compiled = self.select(match).compile(dialect=sa_dialect)
            head, tail = compiled.string.split(_KEYS_HERE)  # the one place: two parts
            self._compiled[key] = None if compiled.params else (head, tail)
        found = self._compiled[key]
        assert not isinstance(found, SQLCompiler)
        return found

    def _expanding(self, sa_dialect: sa.Dialect) -> SQLCompiler:
        found = self._compiled.get((id(sa_dialect), False))
        if found is None:
            lookup = [self.rel.table.c[c] for c in self.rel.child_columns]
            column = lookup[0] if len(lookup) == 1 else sa.tuple_(*lookup)
            keys = sa.bindparam("rf_keys", expanding=True, type_=column.type)
            found = self._compiled[(id(sa_dialect), False)] = self.select(column.in_(keys)).compile(
                dialect=sa_dialect
            )
        assert isinstance(found, SQLCompiler)
        return found

    def unpack(self, groups: Sequence[Any]) -> list[Row]:
        """Rows from ``(count, packed rows)`` pairs, checking that every group is whole."""
        names, decoders, width = self.names, self.decoders, len(self.names)
        rows: list[Row] = []
        for count, packed in groups:
            try:
                values = orjson.loads(packed) if packed is not None else None
            except orjson.JSONDecodeError:
                values = None
            if values is None or len(values) != count:
                raise Incomplete(
                    f"{self.rel.table.name}: a packed group of {count} rows came back cut "
                    "(larger than max_allowed_packet?)"
                )
            for row in values:
                if len(row) != width:
                    raise Incomplete(f"{self.rel.table.name}: a packed row has {len(row)} values")
                for i, decode in decoders:
                    value = row[i]
                    if value is not None:
                        row[i] = decode(value)
            rows += map(dict, map(zip, repeat(names), values))
        return rows


def packing(rel: RelationPlan, sa_dialect: sa.Dialect) -> Packing | None:
    """The packing of ``rel``, or ``None`` when one of its columns cannot be packed exactly."""
    if not rel.order_by:
        return None
    names, fields, decoders = [], [], []
    for i, column in enumerate(rel.table.c):
        codec = _codec(column)
        if codec is None:
            return None
        field, decode = codec
        # the dialect's implementation of the type, as SQLAlchemy's plain path applies it
        processor = column.type.dialect_impl(sa_dialect).result_processor(sa_dialect, None)
        if processor is not None:
            decode = _then(decode, processor)
        names.append(column.name)
        fields.append(field)
        if decode is not None:
            decoders.append((i, decode))
    return Packing(rel, tuple(names), tuple(fields), tuple(decoders))


def _codec(column: sa.Column[Any]) -> tuple[sa.ColumnElement[Any], Decode | None] | None:
    """How a column travels (its SQL expression) and becomes the driver's value again."""
    kind = declared(column.type)
    if isinstance(kind, mysql.SET):
        return None
    for types, encode, decode in _codecs():
        if isinstance(kind, types):
            return encode(column), decode
    return None


def _text(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """The text the plain query carries (CONCAT: never typed as JSON by MariaDB)."""
    return sa.func.CONCAT(column)


def _codecs() -> list[tuple[Any, Callable[[sa.Column[Any]], Any], Decode | None]]:
    """(SQLAlchemy types, how they travel, PyMySQL's decoding of that text), first match wins."""
    from pymysql import converters  # type: ignore[import-untyped]

    from rowferry.drivers.mysql_decoders import decode_date, decode_datetime

    return [
        (sa.Integer, lambda column: column, None),  # a JSON number
        (mysql.YEAR, _text, int),
        (sa.Float, _text, float),
        (sa.Numeric, _text, decimal.Decimal),
        (sa.DateTime, _text, decode_datetime),
        (sa.Date, _text, decode_date),
        (sa.Time, _text, converters.convert_timedelta),
        (_Binary, sa.func.HEX, bytes.fromhex),
        ((sa.String, sa.JSON), _text, None),
    ]


def _then(first: Decode | None, second: Callable[[Any], Any]) -> Decode:
    if first is None:
        return second
    return lambda value: second(first(value))


__all__ = ["Incomplete", "Packing", "packing"]
