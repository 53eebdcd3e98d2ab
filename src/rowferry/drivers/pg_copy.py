"""COPY into PostgreSQL: in binary when every column allows it, else in text.

Binary COPY costs the client less than half of text COPY with psycopg, but the server applies no
cast to it: each field must already be the exact binary form of its column's type, and psycopg
dumps what it is told (an int past the range of an ``int4`` column goes in silently wrong). So
a chunk goes in binary only when, for every column, the column's type is one of those below and
every value of the chunk in that column has exactly the Python type that form is made from
(integers also within the column's range, datetimes with or without a time zone as the column
is); anything else (an enum, an array, ``bytea`` (SQLAlchemy hands its values over wrapped),
a float into ``real``, a decimal into a float column, a string for a uuid ...) sends the whole
chunk in text, where PostgreSQL parses and casts.

The server reads a binary field with its column's own receive function, which checks lengths
and applies the column's precision like text input does (``varchar(3)``, ``numeric(10,2)``).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from decimal import Decimal
from functools import partial
from operator import attrgetter, is_not
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_INT_RANGES = {
    "int2": (-(2**15), 2**15 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "int8": (-(2**63), 2**63 - 1),
}
_not_none = partial(is_not, None)
_NONE = type(None)
_tzinfo = attrgetter("tzinfo")


def _form(kind: sa.types.TypeEngine[Any]) -> tuple[str, type] | None:
    """The binary form for a column type (psycopg's name for the dumper, the one Python type
    it takes), or ``None``: no binary COPY into such a column."""
    if isinstance(kind, sa.Enum | sa.ARRAY | sa.Interval):
        return None
    if isinstance(kind, postgresql.JSONB):
        return "jsonb", str  # with the dumper of :func:`_jsonb_text_dumper`
    checks: list[tuple[type, str, type]] = [
        (sa.Boolean, "bool", bool),
        (sa.SmallInteger, "int2", int),
        (sa.BigInteger, "int8", int),
        (sa.Integer, "int4", int),
        (sa.Double, "float8", float),
        (sa.Float, "", float),  # real, float(n): their rounding of a double is not checked
        (sa.Numeric, "numeric", Decimal),
        (sa.DateTime, "timestamp", dt.datetime),
        (sa.Date, "date", dt.date),
        (sa.Uuid, "uuid", uuid.UUID),
        (sa.JSON, "text", str),  # json is received as its text
        (sa.String, "text", str),  # text, varchar, char: received as text, length checked
    ]
    for base, name, python in checks:
        if isinstance(kind, base):
            if not name:
                return None
            if name == "timestamp" and getattr(kind, "timezone", False):
                name = "timestamptz"
            if base is sa.String and type(kind) not in _PLAIN_STRINGS:
                return None  # citext, tsvector and the like
            return name, python
    return None


_PLAIN_STRINGS = (sa.String, sa.Text, sa.Unicode, sa.UnicodeText, sa.VARCHAR, sa.CHAR, sa.TEXT)


def binary_types(
    table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> list[str] | None:
    """The dumper names of a binary COPY of ``rows`` into ``columns``, or ``None``: use text."""
    forms = [_form(table.c[column].type) for column in columns]
    if None in forms:
        return None
    by_column = zip(*rows, strict=True) if rows else [()] * len(columns)
    names = []
    for form, values in zip(forms, by_column, strict=True):
        assert form is not None
        name, python = form
        kinds = set(map(type, values))
        if _NONE in kinds:
            kinds.discard(_NONE)
            values = tuple(filter(_not_none, values))
        if kinds and not _fits(name, python, kinds, values):
            return None
        names.append(name)
    return names


def _fits(name: str, python: type, kinds: set[type], values: Sequence[Any]) -> bool:
    """Whether ``values`` (none of them None, all of ``kinds``) take this binary form."""
    if kinds != {python}:
        return False
    if name in _INT_RANGES:
        low, high = _INT_RANGES[name]
        return bool(low <= min(values) and max(values) <= high)
    if name == "timestamp":
        return set(map(_tzinfo, values)) == {None}
    if name == "timestamptz":
        return None not in set(map(_tzinfo, values))
    return True


def copy(cursor: Any, table: str, cols: str, binary: list[str] | None, rows: Sequence[Any]) -> None:
    """``COPY table (cols) FROM STDIN`` of ``rows`` through a psycopg cursor; in binary with
    ``binary`` (from :func:`binary_types`), else in text."""
    if binary is None:
        with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as stream:
            for row in rows:
                stream.write_row(row)
        return
    if "jsonb" in binary:
        cursor.adapters.register_dumper(str, _jsonb_text_dumper())  # this cursor only
    with cursor.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as stream:
        stream.set_types(binary)
        for row in rows:
            stream.write_row(row)


@functools.cache
def _jsonb_text_dumper() -> type[Any]:
    """The binary dumper of JSON text into ``jsonb``: a version byte, 1, then the text
    (psycopg's own takes a Python object and would encode the text again)."""
    from psycopg.adapt import Dumper
    from psycopg.postgres import types
    from psycopg.pq import Format

    class JsonbTextDumper(Dumper):
        format = Format.BINARY
        oid = types["jsonb"].oid

        def dump(self, obj: Any) -> bytes:
            return b"\x01" + str(obj).encode()

    return JsonbTextDumper
