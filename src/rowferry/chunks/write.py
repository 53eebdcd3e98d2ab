"""Writing one chunk's output rows to the target table in bulk, under its conflict policy.

Values are prepared per column: dicts and lists become JSON documents (see
:mod:`rowferry.documents`), other values go through the column type's own bind processing
(needed by SQLite for decimals and datetimes). A column none of whose values in the chunk needs
that (no bind processing, no document, no value sent as text) is passed as it is: the rows'
tuples are built by ``operator.itemgetter``, the columns by one ``zip`` and a column's value
types found by ``map(type)``, all in C, where calling a Python function per value would be a
noticeable share of a plain copy's time.
The dialect then writes all rows in one bulk operation: executemany on SQLite, multi-row INSERT
on MySQL/MariaDB, COPY on PostgreSQL.

A row the target cannot take is rejected, whether the server refuses it or the client finds it
first, and :class:`BadRows` finds it by bisection for the quarantine. Found on the client side,
as :class:`~rowferry.errors.RowRejected`, on every database alike:

- a ``bytes`` value for a column that is not binary: no database keeps it as given (PostgreSQL
  stores its hex text, ``\\x6f6b``; MariaDB decodes it in the column's character set; SQLite
  stores a BLOB in a text column), so it is not sent at all. A column of a type SQLAlchemy does
  not know (a reflected geometry) takes it, and the database decides;
- a value its column's bind processing or JSON rendering refuses (a string for a SQLite date);
- a value the driver cannot send: a string the connection's encoding cannot hold (a lone
  surrogate, or a character outside a ``latin1`` connection's), an integer too large for
  SQLite (``ValueError`` and ``OverflowError`` raised while writing, never by the server);
- on MySQL/MariaDB, a row larger than ``max_allowed_packet`` (see
  :mod:`rowferry.drivers.mysql_insert`), which the server would answer by dropping the
  connection.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

import sqlalchemy as sa

from rowferry import documents
from rowferry.dialects.base import Dialect
from rowferry.dialects.connect import mask_secrets
from rowferry.errors import RowRejected
from rowferry.migration.spec import Row
from rowferry.migration.transform import Group
from rowferry.schema.resolve import TargetPlan

_TZINFO = attrgetter("tzinfo")
_DATETIMES = frozenset({dt.datetime, type(None)})
#: the Python types of binary values
_BYTES = frozenset({bytes, bytearray, memoryview})


class Prepare:
    """How the values of one target column become driver parameters: JSON documents rendered
    by rowferry, then the column type's own bind processing, then text for the values a driver
    cannot take (decimals on SQLite; UUIDs for a column that is not a UUID column, as when a
    PostgreSQL uuid key is copied into a CHAR(36) elsewhere)."""

    def __init__(self, column: sa.Column[Any], dialect: Dialect) -> None:
        is_json = isinstance(column.type, sa.JSON)
        # The dialect's own implementation of the type, as SQLAlchemy itself binds: the generic
        # type's processor can differ (Numeric's turns decimals into floats on psycopg).
        impl = column.type.dialect_impl(dialect.sa_dialect)
        process: Callable[[Any], Any] | None = (
            None if is_json else impl.bind_processor(dialect.sa_dialect)
        )
        if process is not None and dialect.holds_any_value:
            process = _or_as_its_own_type(process, dialect.sa_dialect)
        self.process = process
        self.as_text: tuple[type, ...] = () if isinstance(column.type, sa.Uuid) else (uuid.UUID,)
        if dialect.decimals_as_text:
            self.as_text += (Decimal,)
        #: what becomes a JSON document: dicts and lists; for a JSON column bare numbers and
        #: booleans too (a server would write a double's text with 15 digits)
        self.documents: tuple[type, ...] = (dict, list, int, float) if is_json else (dict, list)
        self._changes = (*self.documents, *self.as_text)
        self.takes_bytes = _takes_bytes(column.type)
        self.label = f"column {column.name!r} ({type(column.type).__name__})"
        self.keeps_text = dialect.keeps_text(column.type)
        kind = column.type
        #: aware datetimes go into a column without a time zone as their UTC time
        zoned = dialect.time_zones and getattr(kind, "timezone", False)
        self.naive = isinstance(kind, sa.DateTime) and not zoned
        self.unheld_floats = dialect.unheld_floats
        self.rounds_numbers = dialect.rounds_numbers(column.type)
        #: a JSON document that is a bare number is held as a number too
        self.json_numbers = self.rounds_numbers and is_json

    def refuse(self, kinds: set[type]) -> None:
        """Raise :class:`RowRejected` if values of these types cannot go into the column."""
        if not self.takes_bytes and not _BYTES.isdisjoint(kinds):
            raise RowRejected(f"{self.label} is not binary: a bytes value is not written into it")

    def refuse_values(self, values: Sequence[Any], kinds: set[type]) -> None:
        """Raise :class:`RowRejected` for values the target would change without a word: floats
        it cannot hold (NaN into SQLite, which stores NULL; NaN and infinities into MySQL and
        MariaDB, which have none), and a decimal that no double spells exactly into a column
        that holds numbers as doubles (SQLite's of numeric affinity)."""
        if self.unheld_floats is not None and float in kinds:
            unheld = self.unheld_floats
            for value in values:
                if isinstance(value, float) and (value != value or value in unheld):
                    raise RowRejected(f"{self.label}: {value} cannot be stored in this database")
        if self.rounds_numbers and Decimal in kinds:
            for value in values:
                if isinstance(value, Decimal) and not _held_as_a_number(value):
                    raise RowRejected(
                        f"{self.label}: {value} would be rounded (the column holds numbers as "
                        "doubles); declare the column TEXT to keep every digit"
                    )
        if self.json_numbers and not kinds.isdisjoint(_JSON_NUMBERS):
            for value in values:
                if _rounded_json_number(value):
                    raise RowRejected(
                        f"{self.label}: the JSON number {value} would be rounded (the column "
                        "holds numbers as doubles); declare the column TEXT to keep every digit"
                    )

    def in_utc(self, values: Sequence[Any], kinds: set[type]) -> Sequence[Any]:
        """``values`` with each aware datetime as its naive UTC time, for a column without a
        time zone (the drivers would write its wall time in the session's zone); the same
        sequence when there is none (one ``map`` of ``tzinfo``, in C)."""
        if not self.naive or dt.datetime not in kinds:
            return values
        if kinds <= _DATETIMES:
            aware = any(map(_TZINFO, filter(None, values)))
        else:
            aware = any(isinstance(v, dt.datetime) and v.tzinfo for v in values)
        if not aware:
            return values
        return [_utc(v) if isinstance(v, dt.datetime) and v.tzinfo else v for v in values]

    def needed(self, kinds: set[type]) -> bool:
        """Whether values of these types need preparing (else they go as they are)."""
        if self.process is not None:
            return bool(kinds - {type(None)})
        return any(issubclass(kind, self._changes) for kind in kinds)

    def __call__(self, value: Any) -> Any:
        if self.keeps_text and isinstance(value, str) and _TEMPORAL_TEXT.fullmatch(value):
            return value
        if isinstance(value, self.documents):
            return documents.dumps(value)
        if isinstance(value, self.as_text):
            return str(value)
        if self.process is not None and value is not None:
            return self.process(value)
        return value


#: the text forms of SQLite's date and time functions (``YYYY-MM-DD``, ``HH:MM``, both with ``T``
#: or a space between, seconds, fractions, an offset or ``Z``): written into a SQLite date or
#: time column as they are, like the text a SQLite key is read as; other text is refused
_TEMPORAL_TEXT = re.compile(
    r"(?=.)(\d{4}-\d{2}-\d{2}([T ](?=\d))?)?(\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?)?"
)


class Writer:
    """Writes rows to one target table through one dialect."""

    def __init__(self, plan: TargetPlan, dialect: Dialect) -> None:
        self.plan = plan
        self.dialect = dialect
        self._prepare: dict[str, Prepare] = {}

    def write(self, conn: sa.Connection, rows: Sequence[Row]) -> int:
        """Write ``rows`` inside the caller's transaction; return how many were inserted.

        A value the driver cannot send raises :class:`RowRejected` (the server's refusals stay
        SQLAlchemy's ``DBAPIError``)."""
        written = 0
        for columns, group in _by_columns(rows).items():
            values = self.values(columns, group)
            try:
                written += self.dialect.write_rows(
                    conn,
                    self.plan.table,
                    columns,
                    values,
                    self.plan.unique_key,
                    self.plan.on_conflict,
                )
            except (ValueError, OverflowError) as exc:
                raise RowRejected(_unsendable(columns, values, exc)) from exc
        return written

    def values(self, columns: tuple[str, ...], rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """The driver parameters of ``rows``: one tuple per row, in the order of ``columns``."""
        get = itemgetter(*columns)
        values = [(get(row),) for row in rows] if len(columns) == 1 else list(map(get, rows))
        if not values:
            return values
        by_column: list[Sequence[Any]] = list(zip(*values, strict=True))
        prepared = False
        for i, column in enumerate(columns):
            prepare = self._preparer(column)
            kinds = set(map(type, by_column[i]))
            prepare.refuse(kinds)
            prepare.refuse_values(by_column[i], kinds)
            converted = prepare.in_utc(by_column[i], kinds)
            if converted is not by_column[i]:
                by_column[i], prepared = converted, True
            if prepare.needed(kinds):
                try:
                    by_column[i] = list(map(prepare, by_column[i]))
                except (TypeError, ValueError, OverflowError) as exc:
                    raise RowRejected(f"{prepare.label}: {type(exc).__name__}: {exc}") from exc
                prepared = True
        return list(zip(*by_column, strict=True)) if prepared else values

    def _preparer(self, column: str) -> Prepare:
        if column not in self._prepare:
            self._prepare[column] = Prepare(self.plan.table.c[column], self.dialect)
        return self._prepare[column]


class BadRows:
    """Finds the root rows whose target rows the database rejects, by bisection.

    Each probe writes a subset in a transaction that is always rolled back, so probing never
    leaves anything behind; only transient errors (deadlock, lost connection) escape. A subset
    fails when the server refuses it or when the writer rejects one of its rows before sending
    (:class:`RowRejected`).
    """

    def __init__(
        self, writer: Writer, conn: sa.Connection, is_transient: Callable[[Any], bool]
    ) -> None:
        self.writer = writer
        self.conn = conn
        self.is_transient = is_transient

    def find(self, groups: list[Group]) -> list[tuple[Group, str]]:
        """The groups to set aside, with the database's reason, so that the others are taken
        together: rows in different halves may conflict with each other (keys distinct in the
        source and equal under the target's collation), so the rest is probed once more."""
        bad = self._bisect(groups)
        if not bad:
            return []
        rejected = {id(group) for group, _ in bad}
        rest = [group for group in groups if id(group) not in rejected]
        if not rest or self._probe(rest) is None:
            return bad
        return bad + self._linear(rest)

    def _bisect(self, groups: list[Group]) -> list[tuple[Group, str]]:
        error = self._probe(groups)
        if error is None:
            return []
        if len(groups) == 1:
            return [(groups[0], error)]
        mid = len(groups) // 2
        bad = self._bisect(groups[:mid]) + self._bisect(groups[mid:])
        return bad or self._linear(groups)

    def _linear(self, groups: list[Group]) -> list[tuple[Group, str]]:
        """Each half passes alone but not together (rows that conflict with each other): keep
        rows in order while they fit, set aside each one that does not."""
        kept: list[Group] = []
        bad: list[tuple[Group, str]] = []
        for group in groups:
            error = self._probe([*kept, group])
            if error is None:
                kept.append(group)
            else:
                bad.append((group, error))
        return bad

    def _probe(self, groups: list[Group]) -> str | None:
        rows = [row for group in groups for row in group.outputs]
        try:
            self.writer.write(self.conn, rows)
            return None
        except sa.exc.DBAPIError as exc:
            if self.is_transient(exc):
                raise
            return mask_secrets(str(exc.orig)).strip()
        except RowRejected as exc:
            return mask_secrets(str(exc))
        finally:
            self.conn.rollback()


def _or_as_its_own_type(
    process: Callable[[Any], Any], sa_dialect: sa.Dialect
) -> Callable[[Any], Any]:
    """``process``, and for a value it cannot take, the processing of the value's own type.

    For a database whose every column holds any value (SQLite): a datetime copied into a
    column declared ``NUM`` (as ``CREATE TABLE ... AS SELECT`` declares a DATETIME column) is
    written as SQLAlchemy writes a datetime, the text its source column held. A value of a type
    with no processing of its own (text that is no date, for a date column) stays refused."""
    own: dict[type, Callable[[Any], Any] | None] = {}

    def bind(value: Any) -> Any:
        try:
            return process(value)
        except (TypeError, ValueError):
            kind = type(value)
            if kind not in own:
                implied = sa.literal(value).type.dialect_impl(sa_dialect)
                own[kind] = implied.bind_processor(sa_dialect)
            processor = own[kind]
            if processor is None:  # text for a date column, say: refused as before
                raise
            return processor(value)

    return bind


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


_JSON_NUMBERS = frozenset({int, str})
_JSON_NUMBER = re.compile(r"\s*-?\d+(\.\d+)?([eE][-+]?\d+)?\s*")


def _rounded_json_number(value: Any) -> bool:
    """Whether ``value``, a bare JSON number (an integer, or JSON text that is one), changes
    when a column of numeric affinity holds it as an integer or a double."""
    if type(value) is int:
        return not -(2**63) <= value < 2**63
    if isinstance(value, str) and _JSON_NUMBER.fullmatch(value):
        return not _held_as_a_number(Decimal(value))
    return False


def _held_as_a_number(value: Decimal) -> bool:
    """Whether a column holding numbers as 64-bit integers or doubles keeps ``value``: an
    integer within 64 bits, or a decimal that the nearest double spells exactly."""
    if not value.is_finite():
        return False
    if value == value.to_integral_value() and -(2**63) <= value < 2**63:
        return True
    return Decimal(repr(float(value))) == value


def _takes_bytes(kind: sa.types.TypeEngine[Any]) -> bool:
    """Whether a column of this type takes ``bytes`` values: a binary type, or one SQLAlchemy
    does not know (the database decides)."""
    try:
        python = kind.python_type
    except NotImplementedError:
        return True
    return issubclass(python, bytes | bytearray | memoryview)


def _unsendable(
    columns: Sequence[str], values: Sequence[tuple[Any, ...]], exc: ValueError | OverflowError
) -> str:
    """Why the driver could not send a write: its error, or the column and the value (in ASCII)
    of a string the connection's encoding cannot hold."""
    reason = f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, UnicodeEncodeError):
        return reason
    part = exc.object[exc.start : exc.end]
    for i, column in enumerate(columns):
        for row in values:
            value = row[i]
            if isinstance(value, str) and part in value:
                text = ascii(value[:60])  # the quarantine may be in that same encoding
                return (
                    f"column {column!r}: {text} cannot be encoded in {exc.encoding} ({exc.reason})"
                )
    return reason


def _by_columns(rows: Sequence[Row]) -> dict[tuple[str, ...], list[Row]]:
    """Rows grouped by their set of columns (nearly always a single group)."""
    if not rows:
        return {}
    first = tuple(rows[0])
    # the usual case, checked in C: the same columns in the same order, else in any order
    if all(map(first.__eq__, map(tuple, rows))) or all(
        map(rows[0].keys().__eq__, map(dict.keys, rows))
    ):
        return {first: list(rows)}
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return groups
