"""Multi-row INSERTs for MySQL/MariaDB, rendered by rowferry and sized to the server's
``max_allowed_packet``.

The drivers' ``executemany`` cut multi-row INSERTs at 1 MB (PyMySQL) or 64 KB (mysqlclient):
several statements per chunk when its rows are JSON documents of a few kilobytes. And PyMySQL
escapes every string with ``str.translate`` over a per-character table, about 40 % of the write
time in a profile of the reference job. Here one statement carries as many rows as the server
accepts; with PyMySQL a string is escaped by a few ``str.replace`` calls, run only for the
characters it contains; naive datetimes, dates and finite decimals by their C ``isoformat``
and ``format(value, "f")``, the text PyMySQL's own ``escape_datetime`` (18 % of a plain copy's
time in a profile, for its ``str.format`` over six attributes), ``escape_date`` and
``Decimal2Literal`` give; every other value except integers and NULL by PyMySQL's own escaping.
So its SQL is what ``executemany`` would have sent. With mysqlclient every value is rendered by
its C ``literal``.

With PyMySQL a chunk is rendered column by column: for a column whose values are all of one
type (NULLs aside), one check of the chunk's values chooses its rendering, and each row is
one ``str.format`` of a template made for the chunk (``({},'{}',{:f})``: integers as they
are, strings that need no escape between quotes, decimals by ``f``, datetimes after one
``map`` of ``isoformat``), all in C. Value by value (:meth:`_PyMySQL.literal` and its type
checks), rendering was 63 % of the writing thread's samples of a plain copy into MariaDB.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from operator import attrgetter, methodcaller
from typing import Any

import sqlalchemy as sa

#: never build a statement larger than this, whatever the server accepts
MAX_STATEMENT_BYTES = 16 * 1024 * 1024
#: room left in a packet for the command byte and the statement's head and tail
_MARGIN = 1024
#: ``SERVER_STATUS_NO_BACKSLASH_ESCAPES`` in the server status flags
_NO_BACKSLASH_ESCAPES = 512
_INFO_KEY = "rowferry_max_statement_bytes"
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
    limit = _statement_limit(conn)
    driver = conn.connection.driver_connection
    render = _PyMySQL(driver) if conn.dialect.driver == "pymysql" else _MySQLdb(driver)
    prefix, suffix = (head + " VALUES ").encode(render.encoding), clause.encode(render.encoding)
    affected = 0
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        for statement in _statements(prefix, suffix, render.rows(rows), limit):
            affected += cursor.execute(statement)
    except conn.dialect.loaded_dbapi.Error as exc:
        error = conn.dialect.loaded_dbapi.Error
        raise sa.exc.DBAPIError.instance(f"{head} VALUES ...", None, exc, error) from exc
    finally:
        cursor.close()
    return affected


def _statements(prefix: bytes, suffix: bytes, rows: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """Group the rendered rows into statements of at most ``limit`` bytes (a row that alone is
    larger still goes, alone, and the server's refusal names it)."""
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


def _statement_limit(conn: sa.Connection) -> int:
    """The largest statement to send on this connection, asked of the server once."""
    info = conn.connection.info
    if _INFO_KEY not in info:
        server = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
        client = int(getattr(conn.connection.driver_connection, "max_allowed_packet", server))
        info[_INFO_KEY] = min(server, client, MAX_STATEMENT_BYTES) - _MARGIN
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
