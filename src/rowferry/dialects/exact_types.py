"""Column types that read values as the database holds them.

SQLAlchemy reflects MySQL/MariaDB ``DOUBLE`` and ``REAL`` as floats read into decimals rounded
to 10 places (``1e-12`` becomes 0); :func:`read_exactly` has them read as floats. MySQL/MariaDB
``TIME`` holds durations from -838:59:59 to 838:59:59; SQLAlchemy reads them as times of day,
wrapping past 24 hours (``25:00:00`` becomes ``01:00:00``) and turning a negative duration into
a time: :func:`read_exactly` gives such columns :class:`Stored`, and their values arrive as the
drivers' ``timedelta``.

SQLite stores any value in any column: a ``DATETIME`` column holds text (in whatever format the
application wrote: ``2024-05-01 10:00:00``, ``2024-05-01T10:00:00.000001``), a ``DECIMAL``
column integers, doubles or text. SQLAlchemy's types parse such values on the way out and
render their own format on the way in, which is wrong in two places:

- **keys**: SQLite orders and compares a key as stored (text by text), so the cursor must be the
  stored value itself. Parsed and rendered again (``T`` becomes a space), a cursor no longer
  sits where its row is: rows would be skipped, or read twice. :class:`Stored` reads and binds a
  key column's values untouched.
- **decimals**: SQLAlchemy turns a double into a decimal through ``"%.{scale}f"``, rounding to
  the declared scale (10 places when none is declared: ``1e-12`` becomes 0). :class:`Decimals`
  reads an integer as its decimal, a double as the shortest decimal that reads back as the same
  double (what PostgreSQL and MariaDB make of a double written to a ``NUMERIC`` column), and
  text as the decimal it spells; at the column's declared scale when that loses no digit.
"""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

if TYPE_CHECKING:
    from rowferry.dialects.base import Dialect


class Stored(sa.types.TypeDecorator[Any]):
    """A column type whose values are read and bound exactly as SQLite stores them."""

    impl = sa.types.NullType
    cache_ok = True

    def __init__(self, kind: sa.types.TypeEngine[Any]) -> None:
        super().__init__()
        self.impl = kind  # type: ignore[assignment]  # the declared type, for DDL and people

    def bind_processor(self, dialect: sa.Dialect) -> None:
        return None

    def result_processor(self, dialect: sa.Dialect, coltype: object) -> None:
        return None


def _decimal(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


class Decimals(sa.types.TypeDecorator[Any]):
    """A ``NUMERIC``/``DECIMAL`` column read as described in the module's docstring; values
    that are no number (text that spells none, NaN, infinities) come back as stored."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, kind: sa.types.TypeEngine[Any]) -> None:
        super().__init__()
        self.impl = kind  # type: ignore[assignment]

    def result_processor(self, dialect: sa.Dialect, coltype: object) -> Any:
        scale = getattr(self.impl_instance, "scale", None)
        if scale is None:
            return _decimal
        exponent = Decimal(1).scaleb(-scale)

        def to_scale(value: Any) -> Any:
            """The decimal at the declared scale (``132.2`` as ``132.20``) when no digit is
            lost on the way; else as it is."""
            found = _decimal(value)
            if isinstance(found, Decimal) and found.is_finite():
                try:
                    scaled = found.quantize(exponent)
                except InvalidOperation:
                    return found
                return scaled if scaled == found else found
            return found

        return to_scale


def declared(kind: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    """The type a column is declared with, under the types of this module."""
    return kind.impl_instance if isinstance(kind, Stored | Decimals) else kind


def read_exactly(table: sa.Table, dialect: Dialect) -> sa.Table:
    """``table`` with its columns read as the database holds them: doubles as floats (SQLAlchemy
    reflects MySQL/MariaDB ``DOUBLE`` and ``REAL`` as floats read into decimals rounded to 10
    places), and ``TIME`` as durations (:class:`Stored`) where the dialect says it holds them
    (:attr:`~rowferry.dialects.base.Dialect.time_is_duration`: MySQL/MariaDB)."""
    for column in table.c:
        kind = column.type
        if isinstance(kind, sa.Float) and kind.asdecimal:
            exact = copy.copy(kind)
            exact.asdecimal = False
            column.type = exact
        elif isinstance(kind, sa.Time) and dialect.time_is_duration:
            column.type = Stored(kind)
    return table


def read_as_stored(table: sa.Table, key: list[str]) -> None:
    """Give a SQLite table's columns the types above: every decimal column :class:`Decimals`,
    ``key`` columns whose values SQLAlchemy converts :class:`Stored`."""
    dialect = sqlite.dialect()
    for column in table.c:
        kind = declared(column.type)
        if column.name in key and kind.dialect_impl(dialect).result_processor(dialect, None):
            column.type = Stored(kind)
        elif isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
            column.type = Decimals(kind)
