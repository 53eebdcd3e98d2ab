"""rowferry's JSON rendering (see :mod:`rowferry.documents`), written in each dialect's SQL.

The pushdown path builds documents in the database with these expressions; the Python path
renders them with :func:`rowferry.documents.dumps`. Both give the same document, compared as
parsed JSON: decimals with their stored digits, datetimes ``YYYY-MM-DDTHH:MM:SS.ffffff`` (plus
the offset for time-zone-aware values), dates ``YYYY-MM-DD``, times ``HH:MM:SS.ffffff``, bytes
in base64, booleans as ``true``/``false``, NULL as ``null``, a ``HasMany`` as a list (``[]``
when empty) ordered like the Python path, a ``BelongsTo`` as an object or ``null``.

Related rows are correlated scalar subqueries in the SELECT list of a query over the root table
alone, so every database drives the statement from the root's key range and reaches related
rows through their foreign-key index: no join order for an optimizer to get wrong.

:class:`SqlDocuments` holds what every database shares (a document's pairs, the correlated
subqueries); each database's class holds its own SQL (:class:`MySQLDocuments`,
:class:`PostgreSQLDocuments`, :class:`SQLiteDocuments`). The dialect object gives the right one
(:meth:`rowferry.dialects.base.Dialect.sql_documents`). Types whose rendering cannot be matched
exactly (floats outside PostgreSQL's double precision, intervals, arrays, types SQLAlchemy does
not know) are refused by :meth:`SqlDocuments.unsupported`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count
from typing import Any, ClassVar, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.sqltypes import _Binary
from sqlalchemy.sql.visitors import InternalTraversal

from rowferry.dialects.exact_types import declared


class Relation(Protocol):
    """A relation bound to its table (what :class:`rowferry.schema.resolve.RelationPlan` is)."""

    @property
    def name(self) -> str: ...
    @property
    def many(self) -> bool: ...
    @property
    def table(self) -> sa.Table: ...
    @property
    def parent_columns(self) -> tuple[str, ...]: ...
    @property
    def child_columns(self) -> tuple[str, ...]: ...
    @property
    def order_by(self) -> tuple[sa.ColumnElement[Any], ...]: ...
    @property
    def children(self) -> Sequence[Relation]: ...


#: PostgreSQL functions take at most 100 arguments: objects are built 50 pairs at a time
_PG_PAIRS = 50


class ordered_json_agg(FunctionElement[Any]):
    """``JSON_ARRAYAGG(x ORDER BY ...)`` / ``json_agg(x ORDER BY ...)``: first clause is x."""

    inherit_cache = True
    name = "ordered_json_agg"


def _agg(element: ordered_json_agg, compiler: SQLCompiler, function: str, **kw: Any) -> str:
    value, *order = list(element.clauses)
    ordering = ", ".join(compiler.process(c, **kw) for c in order)
    return f"{function}({compiler.process(value, **kw)} ORDER BY {ordering})"


@compiles(ordered_json_agg, "mysql")
@compiles(ordered_json_agg, "mariadb")
def _agg_mysql(element: ordered_json_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return _agg(element, compiler, "JSON_ARRAYAGG", **kw)


@compiles(ordered_json_agg, "postgresql")
def _agg_postgresql(element: ordered_json_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return _agg(element, compiler, "json_agg", **kw)


_RENDERED = (sa.Integer, sa.Numeric, sa.String, sa.Boolean, sa.DateTime, sa.Date, sa.JSON, sa.Uuid)


def _is_float(column: sa.ColumnElement[Any]) -> bool:
    return isinstance(column.type, sa.Float)


class SqlDocuments:
    """Builds the SQL expression of a root row's document; each database's subclass supplies
    its own JSON functions and value renderings."""

    #: whether the database renders binary values as base64 (SQLite has no function for it)
    renders_binary: ClassVar[bool] = True

    def __init__(self) -> None:
        self._aliases = count(1)

    def unsupported(self, columns: Sequence[sa.Column[Any]]) -> list[str]:
        """Columns whose values this database's SQL cannot render exactly as the Python path
        does."""
        found = []
        for column in columns:
            kind = declared(column.type)
            if _is_float(column):
                ok = self.renders_float(kind)
            elif isinstance(kind, _Binary):
                ok = self.renders_binary
            elif isinstance(kind, sa.Time):
                ok = not getattr(kind, "timezone", False)
            else:
                ok = isinstance(kind, _RENDERED)
            if not ok:
                found.append(f"{column.table.name}.{column.name} ({kind})")
        return found

    def renders_float(self, kind: sa.types.TypeEngine[Any]) -> bool:
        """Whether a float column's value comes out with the digits Python gives it."""
        return False

    def document(
        self, table: sa.FromClause, relations: Sequence[Relation]
    ) -> sa.ColumnElement[Any]:
        """``{**row, **related}`` of ``table``'s current row, as a JSON expression."""
        pairs: list[tuple[str, sa.ColumnElement[Any]]] = [(c.name, self.value(c)) for c in table.c]
        pairs += [(rel.name, self.relation(rel, table)) for rel in relations]
        return self.object(pairs)

    # -- objects and lists ---------------------------------------------------------------

    def object(self, pairs: Sequence[tuple[str, sa.ColumnElement[Any]]]) -> sa.ColumnElement[Any]:
        return sa.func.json_object(*_flat(pairs))

    def relation(self, rel: Relation, parent: sa.FromClause) -> sa.ColumnElement[Any]:
        """The related row(s) of ``parent``'s current row: an object or null, or a list."""
        child = rel.table.alias(f"rf_{next(self._aliases)}")
        match = sa.and_(
            *(
                child.c[c] == parent.c[p]
                for p, c in zip(rel.parent_columns, rel.child_columns, strict=True)
            )
        )
        value = self.document(child, rel.children)
        if rel.many:
            order = [child.c[c.name] for c in rel.order_by]
            return self.array(value, child, match, order, parent)
        key = [child.c[c.name] for c in rel.table.primary_key.columns] or [
            child.c[c] for c in rel.child_columns
        ]
        one = sa.select(value).where(match).order_by(*key).suffix_with("LIMIT 1")
        return self.nested(one.scalar_subquery())

    def array(
        self,
        value: sa.ColumnElement[Any],
        child: sa.FromClause,
        match: sa.ColumnElement[bool],
        order: list[sa.ColumnElement[Any]],
        parent: sa.FromClause,
    ) -> sa.ColumnElement[Any]:
        """The ordered list of related documents, ``[]`` when there are none."""
        agg = sa.select(ordered_json_agg(value, *order)).where(match)
        return sa.func.coalesce(agg.scalar_subquery(), self.empty_list())

    def empty_list(self) -> sa.ColumnElement[Any]:
        return sa.cast(_text("[]"), sa.JSON)

    def nested(self, subquery: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """A subquery's document inside another document."""
        return subquery

    # -- values --------------------------------------------------------------------------

    def value(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """One column's value, rendered as the Python path renders it."""
        if isinstance(column.type, sa.JSON):
            return self.json(column)
        if _is_float(column):
            return column
        return self.scalar(column)

    def json(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """A JSON column's document, as a document (not as text)."""
        return column

    def scalar(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """Any other column's value."""
        return column


class MySQLDocuments(SqlDocuments):
    """MySQL and MariaDB: ``JSON_OBJECT``, ``JSON_ARRAYAGG``, ``DATE_FORMAT``."""

    def object(self, pairs: Sequence[tuple[str, sa.ColumnElement[Any]]]) -> sa.ColumnElement[Any]:
        return sa.func.JSON_OBJECT(*_flat(pairs))

    def empty_list(self) -> sa.ColumnElement[Any]:
        return sa.func.JSON_ARRAY()

    def json(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.JSON_EXTRACT(column, "$")

    def scalar(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        kind = declared(column.type)
        if isinstance(kind, sa.DateTime):
            return sa.func.DATE_FORMAT(column, _text("%Y-%m-%dT%H:%i:%s.%f"))
        if isinstance(kind, sa.Time):
            return sa.func.TIME_FORMAT(column, _text("%H:%i:%s.%f"))
        if isinstance(kind, _Binary):
            return sa.func.REPLACE(sa.func.TO_BASE64(column), _text("\n"), _text(""))
        if isinstance(kind, sa.String):
            # MariaDB treats a text column checked with JSON_VALID (its JSON type) as JSON;
            # the Python path reads it as text, and so must this: CONCAT gives plain text.
            return sa.func.CONCAT(column)
        return column  # DECIMAL and DATE come out as rowferry renders them


class PostgreSQLDocuments(SqlDocuments):
    """PostgreSQL: ``json_build_object``, ``json_agg``, ``to_char``."""

    def renders_float(self, kind: sa.types.TypeEngine[Any]) -> bool:
        """``double precision`` prints the shortest digits that read back, as Python does."""
        return isinstance(kind, postgresql.DOUBLE_PRECISION)

    def object(self, pairs: Sequence[tuple[str, sa.ColumnElement[Any]]]) -> sa.ColumnElement[Any]:
        # json, not jsonb: built as text, with no binary form to build and copy at each level;
        # only an object of more than 50 pairs is merged as jsonb (json has no ||)
        if len(pairs) <= _PG_PAIRS:
            return sa.func.json_build_object(*_flat(pairs))
        parts = [
            sa.cast(sa.func.json_build_object(*_flat(pairs[i : i + _PG_PAIRS])), JSONB)
            for i in range(0, len(pairs), _PG_PAIRS)
        ]
        merged: sa.ColumnElement[Any] = parts[0]
        for part in parts[1:]:
            merged = merged.op("||")(part)
        return merged

    def scalar(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        kind = declared(column.type)
        if isinstance(kind, sa.DateTime):
            zone = "TZH:TZM" if getattr(kind, "timezone", False) else ""
            return sa.func.to_char(column, _text(f'YYYY-MM-DD"T"HH24:MI:SS.US{zone}'))
        if isinstance(kind, sa.Time):
            moment = sa.cast(_text("2000-01-01"), sa.Date) + column
            return sa.func.to_char(moment, _text("HH24:MI:SS.US"))
        if isinstance(kind, sa.Date):
            return sa.func.to_char(column, _text("YYYY-MM-DD"))
        if isinstance(kind, _Binary):
            encoded = sa.func.encode(column, _text("base64"))
            return sa.func.translate(encoded, _text("\n"), _text(""))
        return column  # numeric keeps its digits; booleans are JSON booleans


class SQLiteDocuments(SqlDocuments):
    """SQLite: ``json_object``, ``json_group_array``, and text dates rendered by hand."""

    renders_binary = False

    def array(
        self,
        value: sa.ColumnElement[Any],
        child: sa.FromClause,
        match: sa.ColumnElement[bool],
        order: list[sa.ColumnElement[Any]],
        parent: sa.FromClause,
    ) -> sa.ColumnElement[Any]:
        """No ORDER BY inside aggregates before SQLite 3.44: the rows are ordered first."""
        rows = (
            sa.select(value.label("doc")).where(match).order_by(*order).correlate(parent).subquery()
        )
        agg = sa.select(sa.func.json_group_array(sa.func.json(rows.c.doc)))
        return self.nested(agg.scalar_subquery())

    def nested(self, subquery: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """SQLite forgets that a subquery's text is JSON: say it again."""
        return sa.func.json(subquery)

    def json(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        # a bare JSON number held as a double: its text has 15 digits, too few for some
        text = sa.cast(column, sa.Text)
        cut = sa.and_(sa.func.typeof(column) == _text("real"), sa.cast(text, sa.Float) != column)
        refused = sa.func.json(_text("rowferry: to the Python way: ").op("||")(text))
        return sa.case((cut, refused), else_=sa.func.json(column))

    def scalar(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        kind = declared(column.type)
        if isinstance(kind, sa.DateTime):
            return self._datetime(column)
        if isinstance(kind, sa.Time):
            return sa.func.substr(column, 1, 8).op("||")(self._fraction(column, 10))
        if isinstance(kind, sa.Boolean):
            json_true, json_false = sa.func.json(_text("true")), sa.func.json(_text("false"))
            return sa.case((column.is_(None), None), (column != 0, json_true), else_=json_false)
        if isinstance(kind, sa.Numeric):
            return self._number(column, getattr(kind, "scale", None))
        return column

    @staticmethod
    def _number(column: sa.ColumnElement[Any], scale: int | None) -> sa.ColumnElement[Any]:
        """A SQLite decimal as :class:`rowferry.dialects.exact_types.Decimals` reads it: an
        integer's digits, a double's shortest digits, at the declared scale when no digit is lost.

        SQLite's ``printf`` gives at most 16 significant digits, so the SQL renders exactly
        only integers and doubles whose digits fit in 15 (what a double always holds); any other
        value (a double of more digits, text) fails the statement on purpose, and its chunk
        goes the Python way (:class:`rowferry.chunks.pushdown.PushdownProcessor`)."""
        integer: sa.ColumnElement[Any] = column
        if scale is None:
            digits: sa.ColumnElement[Any] = sa.cast(column, sa.Text)
            fits = sa.func.instr(digits, _text("e")) == sa.literal_column("0")
        else:
            digits = sa.func.printf(_text(f"%.{int(scale)}f"), column)
            fits = sa.func.abs(column) < sa.literal_column(f"1e{15 - int(scale)}")
            if scale:
                point = _text("." + "0" * int(scale))
                integer = sa.func.json(sa.cast(column, sa.Text).op("||")(point))
        held = sa.and_(
            sa.func.typeof(column) == _text("real"), fits, sa.cast(digits, sa.Float) == column
        )
        refused = sa.func.json(_text("rowferry: to the Python way: ").op("||")(column))
        return sa.case(
            (column.is_(None), None),
            (sa.func.typeof(column) == _text("integer"), integer),
            (held, sa.func.json(digits)),
            else_=refused,
        )

    def _datetime(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """SQLAlchemy stores ``YYYY-MM-DD HH:MM:SS.ffffff``: a value of that length (26
        characters) needs only its ``T``. Other text (no fraction, no time, written by other
        tools) goes through ``strftime``, which parses it, a large share of the statement's
        time if every value took that way."""
        whole = sa.func.strftime(_text("%Y-%m-%dT%H:%M:%S"), column)
        parsed = whole.op("||")(self._fraction(column, 21))
        stored = sa.func.replace(column, _text(" "), _text("T"))
        return sa.case((sa.func.length(column) == sa.literal_column("26"), stored), else_=parsed)

    @staticmethod
    def _fraction(column: sa.ColumnElement[Any], at: int) -> sa.ColumnElement[Any]:
        """``.ffffff`` from the text SQLAlchemy stores (``...SS.ffffff``, or no fraction)."""
        digits = sa.func.substr(sa.func.substr(column, at).op("||")(_text("000000")), 1, 6)
        return _text(".").op("||")(digits)


class _Constant(ColumnElement[str]):
    """A constant string (a key of a JSON object, a format), written into the statement as a
    literal when it is compiled, quoted by the dialect's own compiler as SQLAlchemy quotes an
    inlined value (quotes doubled; backslashes doubled where the server reads them as escapes;
    ``%`` doubled for the drivers that take ``%s``). A bound parameter instead would be sent,
    converted and cast at every chunk, and it made a third of the cost of compiling the
    statement (half of its parameters)."""

    inherit_cache = True
    _traverse_internals = [("value", InternalTraversal.dp_string)]  # noqa: RUF012 (SQLAlchemy declares it a list)
    type = sa.String()

    def __init__(self, value: str) -> None:
        self.value = value


@compiles(_Constant)
def _render_constant(element: _Constant, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.render_literal_value(element.value, sa.String())


def _text(value: str) -> sa.ColumnElement[str]:
    """A constant string, inlined in the statement (see :class:`_Constant`)."""
    return _Constant(value)


def _flat(pairs: Sequence[tuple[str, sa.ColumnElement[Any]]]) -> list[Any]:
    flat: list[Any] = []
    for name, value in pairs:
        flat += [_text(name), value]
    return flat
