"""Multi-row INSERTs for MySQL/MariaDB, rendered by rowferry and sized to the server's
``max_allowed_packet``.

The drivers' ``executemany`` cut multi-row INSERTs at 1 MB (PyMySQL) or 64 KB (mysqlclient):
several statements per chunk when its rows are JSON documents of a few kilobytes. And PyMySQL
escapes every string with ``str.translate`` over a per-character table, the larger part of its
write time. Here one statement carries as many rows as the server
accepts; with PyMySQL a string is escaped by a few ``str.replace`` calls, run only for the
characters it contains; naive datetimes, dates and finite decimals by their C ``isoformat``
and ``format(value, "f")``, the text PyMySQL's own ``escape_datetime`` (a ``str.format`` over
six attributes), ``escape_date`` and
``Decimal2Literal`` give; every other value except integers and NULL by PyMySQL's own escaping.
So its SQL is what ``executemany`` would have sent. With mysqlclient every value is rendered by
its C ``literal``.

With PyMySQL a chunk is rendered column by column: for a column whose values are all of one
type (NULLs aside), one check of the chunk's values chooses its rendering, and each row is
one ``str.format`` of a template made for the chunk (``({},'{}',{:f})``: integers as they
are, strings that need no escape between quotes, decimals by ``f``, datetimes after one
``map`` of ``isoformat``), all in C, where rendering value by value (:meth:`_PyMySQL.literal`
and its type checks) would be most of the writing thread's time.

A row whose statement alone would be larger than ``max_allowed_packet`` is never sent: the
server answers such a packet by closing the connection, which looks like a lost connection
(2006, 2013) and would be retried forever. :func:`write` measures each rendered row (one
``map(len)``) and raises :class:`~rowferry.errors.RowRejected` before sending anything, so that
bisection quarantines that row. For other drivers, which render their own statements,
:func:`refuse_oversized` does the same from the lengths of the rows' strings and bytes, a lower
bound of the rendered row: a row whose values alone reach the packet is refused; one that
reaches it only once encoded and escaped is still sent, and its lost connection retried.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from operator import attrgetter, methodcaller
from typing import Any

import sqlalchemy as sa

from rowferry.errors import RowRejected

#: never build a statement larger than this, whatever the server accepts
MAX_STATEMENT_BYTES = 16 * 1024 * 1024
#: room left in a packet of several rows for the command byte and the statement's head and tail
_MARGIN = 1024
#: the command byte that precedes a statement in its packet
_COMMAND = 1
#: ``SERVER_STATUS_NO_BACKSLASH_ESCAPES`` in the server status flags
_NO_BACKSLASH_ESCAPES = 512
_INFO_KEY = "rowferry_max_allowed_packet"
#: the types of the values whose length :func:`refuse_oversized` counts (and NULL)
_SIZED = frozenset({str, bytes, bytearray, type(None)})
#: the characters :func:`quote` escapes (with backslash escapes on)
_ESCAPED = re.compile(r"[\\'\x00\n\r\x1a]")
_ISO_SPACE = methodcaller("isoformat", " ")
_TZINFO = attrgetter("tzinfo")


def supports(conn: sa.Connection) -> bool:
    return conn.dialect.driver in ("pymysql", "mysqldb")


def write(conn: sa.Connection, head: str, clause: str, rows: list[tuple[Any, ...]]) -> int:
    """``head VALUES (...),(...) clause`` for every row of ``rows``, in as few statements as the
    packet limit allows, inside the caller's transaction; return the affected rows.

    ``head`` is ``INSERT INTO t (cols)`` and ``clause`` the conflict clause (or empty). PyMySQL's
    errors come out as SQLAlchemy's ``DBAPIError``, like those of any other statement."""
    if not conn.in_transaction():  # so that conn.commit()/rollback() reach the driver
        conn.begin()
    packet = max_allowed_packet(conn)
    driver = conn.connection.driver_connection
    render = _PyMySQL(driver) if conn.dialect.driver == "pymysql" else _MySQLdb(driver)
    prefix, suffix = (head + " VALUES ").encode(render.encoding), clause.encode(render.encoding)
    rendered = render.rows(rows)
    if rendered:
        _refuse_longer(max(map(len, rendered)) + len(prefix) + len(suffix), packet, "")
    limit = min(packet, MAX_STATEMENT_BYTES) - _MARGIN
    affected = 0
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        for statement in _statements(prefix, suffix, rendered, limit):
            affected += cursor.execute(statement)
    except conn.dialect.loaded_dbapi.Error as exc:
        error = conn.dialect.loaded_dbapi.Error
        raise sa.exc.DBAPIError.instance(f"{head} VALUES ...", None, exc, error) from exc
    finally:
        cursor.close()
    return affected


def refuse_oversized(conn: sa.Connection, head: str, rows: Sequence[Sequence[Any]]) -> None:
    """Raise :class:`RowRejected` if one of ``rows`` holds strings and bytes that, with
    ``head``, reach the packet: for drivers whose statements rowferry does not render.

    Only columns of strings and bytes (and NULLs) count, by one ``map(len)`` each; rows are added
    up one by one only when the longest values of all columns together reach the packet."""
    columns = [c for c in zip(*rows, strict=True) if _SIZED.issuperset(map(type, c))]
    longest = [max(map(len, filter(None, column)), default=0) for column in columns]
    packet = max_allowed_packet(conn)
    if sum(longest) + len(head) + _COMMAND < packet:
        return
    for row in zip(*columns, strict=True):
        _refuse_longer(sum(map(len, filter(None, row))) + len(head), packet, "at least ")


def _refuse_longer(statement: int, packet: int, bound: str) -> None:
    """Raise :class:`RowRejected` for a ``statement`` of this length: the server takes a packet
    (the command byte, then the statement) only when it is shorter than ``packet``."""
    if statement + _COMMAND >= packet:
        raise RowRejected(
            f"the row is larger than max_allowed_packet: its INSERT takes {bound}"
            f"{statement + _COMMAND:,} bytes, the server's max_allowed_packet is {packet:,} "
            "(raise it on the server, or make the row smaller)"
        )


def _statements(prefix: bytes, suffix: bytes, rows: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """Group the rendered rows into statements of at most ``limit`` bytes (a row that alone is
    larger, but fits the packet, goes alone)."""
    batch: list[bytes] = []
    size = len(prefix) + len(suffix)
    for row in rows:
        if batch and size + len(row) + 1 > limit:
            yield prefix + b",".join(batch) + suffix
            batch, size = [], len(prefix) + len(suffix)
        batch.append(row)
        size += len(row) + 1
    if batch:
        yield prefix + b",".join(batch) + suffix


def max_allowed_packet(conn: sa.Connection) -> int:
    """The largest packet the server takes on this connection (its session's
    ``max_allowed_packet``, set from the global one when the connection opened), asked once per
    connection."""
    info = conn.connection.info
    if _INFO_KEY not in info:
        info[_INFO_KEY] = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
    return int(info[_INFO_KEY])


class _MySQLdb:
    """SQL literals for one mysqlclient connection: its own C rendering."""

    def __init__(self, driver: Any) -> None:
        self.literal = driver.literal
        self.encoding = driver.encoding

    def row(self, values: Sequence[Any]) -> bytes:
        return b"(" + b",".join([self.literal(v) for v in values]) + b")"

    def rows(self, rows: Sequence[Sequence[Any]]) -> list[bytes]:
        return [self.row(row) for row in rows]


class _PyMySQL:
    """SQL literals for one PyMySQL connection, the way its ``escape`` renders them."""

    def __init__(self, driver: Any) -> None:
        self.escape = driver.escape
        self.encoding = driver.encoding
        self.backslashes = not (driver.server_status & _NO_BACKSLASH_ESCAPES)

    def row(self, values: Sequence[Any]) -> bytes:
        return ("(" + ",".join([self.literal(v) for v in values]) + ")").encode(
            self.encoding, "surrogateescape"
        )

    def rows(self, rows: Sequence[Sequence[Any]]) -> list[bytes]:
        """:meth:`row` of each row, rendered column by column: each row is one ``str.format``
        of a template made for the chunk (``({},'{}',{:f})``), over values prepared per column."""
        if not rows:
            return []
        parts, columns = zip(*map(self._column, zip(*rows, strict=True)), strict=True)
        template = "(" + ",".join(parts) + ")"
        texts = map(template.format, *columns)
        return list(map(methodcaller("encode", self.encoding, "surrogateescape"), texts))

    def _column(self, values: Sequence[Any]) -> tuple[str, Sequence[Any]]:
        """One column's part of the row template and its values for it: at C speed when they
        are of one type (or NULL), else each value's literal."""
        kinds = set(map(type, values))
        if len(kinds) == 1:
            fast = self._same_type(kinds.pop(), values)
            if fast is not None:
                return fast
        elif len(kinds) == 2 and type(None) in kinds:
            kinds.discard(type(None))
            present = [v for v in values if v is not None]
            fast = self._same_type(kinds.pop(), present)
            if fast is not None:
                literals = iter(list(map(fast[0].format, fast[1])))
                return "{}", ["NULL" if v is None else next(literals) for v in values]
        return "{}", list(map(self.literal, values))

    def _same_type(self, kind: type, values: Sequence[Any]) -> tuple[str, Sequence[Any]] | None:
        """A template part and values such that ``part.format(value)`` is what :meth:`literal`
        gives for each of ``values``, all of type ``kind``; ``None`` for a type it renders value
        by value."""
        if kind is int:
            return "{}", values
        if kind is str:
            quoting = self._string(values)
            return ("'{}'", values) if quoting is None else ("{}", list(map(quoting, values)))
        if kind is dt.datetime and set(map(_TZINFO, values)) == {None}:
            return "'{}'", list(map(_ISO_SPACE, values))
        if kind is dt.date:
            return "'{}'", list(map(dt.date.isoformat, values))
        if kind is Decimal and all(map(Decimal.is_finite, values)):
            return "{:f}", values
        return None

    def _string(self, values: Sequence[str]) -> Callable[[str], str] | None:
        """How to quote a column of strings; ``None``: between quotes as they are."""
        if self.backslashes:
            return quote if any(map(_ESCAPED.search, values)) else None
        return _doubled if any("'" in v for v in values) else None

    def literal(self, value: Any) -> str:
        kind = type(value)
        if kind is str:
            return quote(value) if self.backslashes else _doubled(value)
        if value is None:
            return "NULL"
        if kind is int:
            return str(value)
        text: str
        if kind is dt.datetime and value.tzinfo is None:  # PyMySQL drops an offset: it goes there
            text = value.isoformat(" ")
            return "'" + text + "'"
        if kind is Decimal and value.is_finite():
            return format(value, "f")
        if kind is dt.date:
            text = value.isoformat()
            return "'" + text + "'"
        return str(self.escape(value))


def quote(text: str) -> str:
    """``text`` as a MySQL string literal (backslash escapes on): the characters PyMySQL
    escapes, except ``"``, which needs no escape between single quotes."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "'" in text:
        text = text.replace("'", "\\'")
    if "\x00" in text:
        text = text.replace("\x00", "\\0")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    if "\x1a" in text:
        text = text.replace("\x1a", "\\Z")
    return "'" + text + "'"


def _doubled(text: str) -> str:
    """``text`` as a string literal with backslash escapes off (``NO_BACKSLASH_ESCAPES``)."""
    return "'" + text.replace("'", "''") + "'"
