"""Faster reading of result rows on PyMySQL.

PyMySQL reads each row of a result through ``_read_packet`` (a header read, a payload read, a
join, a packet object, an error check, an EOF check) and then parses it with three method calls
per column, which is most of the time spent reading a result. :class:`Connection` reads a
buffered result's rows in one loop and parses each row's columns inline, from the row's bytes
with no packet object, and integers and floats from their bytes with no decoding to text
first.

The values are the same: each column still goes through the connection's own decoding and
converters (rowferry's :mod:`rowferry.drivers.mysql_decoders` among them), and
``tests/test_pymysql_rows.py`` compares every column type, NULLs, long values of each
length-prefix size, rows longer than one protocol packet and errors against PyMySQL's own
reading. Only the data rows of buffered results take this path: the handshake, the column
descriptions, OK and error responses and unbuffered cursors go through PyMySQL's code.

The loop reads PyMySQL's private attributes, so it is used only with the PyMySQL versions it was
written against (:data:`VERSIONS`); any other gets PyMySQL's own connection
(:func:`connection_class`).
"""

from __future__ import annotations

from typing import Any, NoReturn, cast

import pymysql  # type: ignore[import-untyped]
from pymysql import err
from pymysql.connections import MySQLResult  # type: ignore[import-untyped]
from pymysql.constants import CR  # type: ignore[import-untyped]
from pymysql.protocol import MysqlPacket  # type: ignore[import-untyped]

#: the PyMySQL versions (major, minor) whose internals this module was written against
VERSIONS = ((1, 1), (1, 2))

_MAX_PACKET = 0xFFFFFF  # a payload this long continues in the next packet
_CONTINUED = _MAX_PACKET.to_bytes(3, "little")
_EOF, _ERROR, _NULL = 0xFE, 0xFF, 0xFB
#: how many bytes follow a length-coded integer's first byte when it is not the length itself
_LENGTH_BYTES = {0xFC: 2, 0xFD: 3, 0xFE: 8}
_LOST = "Lost connection to MySQL server during query"


class _Result(MySQLResult):  # type: ignore[misc]
    def _read_rowdata_packet(self) -> None:
        """Every data row of the result, up to its EOF packet.

        PyMySQL's ``_read_packet`` has set the socket's timeout by the time rows are read (it
        read the column descriptions), so the loop reads the buffered socket file directly. A
        packet that is not an ordinary row (short read, wrong sequence number, 16 MB or longer)
        goes to :func:`_unusual_payload`, which does what PyMySQL's ``_read_packet`` does.
        """
        conn: Any = cast(Any, self).connection
        read = conn._rfile.read
        parse = self._parse_row
        columns = _fast_columns(self.converters)
        encoding = conn.encoding
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        while True:
            try:
                header = read(4)
            except BaseException as exc:
                _lost(conn, exc)
            if len(header) < 4 or header[3] != conn._next_seq_id or header[:3] == _CONTINUED:
                data = _unusual_payload(conn, read, header)
            else:
                conn._next_seq_id = (header[3] + 1) & 0xFF
                size = header[0] | header[1] << 8 | header[2] << 16
                try:
                    data = read(size)
                except BaseException as exc:
                    _lost(conn, exc)
                if len(data) < size:
                    _lost(conn, None)
            first = data[0] if data else None
            if first == _ERROR:
                MysqlPacket(data, encoding).raise_for_error()
            if first == _EOF and len(data) < 9:
                self._check_packet_is_eof(MysqlPacket(data, encoding))
                self.connection = None  # as PyMySQL does: no reference cycle
                break
            append(parse(data, 0, columns))
        self.affected_rows = len(rows)
        self.rows = tuple(rows)

    def _read_row_from_packet(self, packet: MysqlPacket) -> tuple[Any, ...]:
        """One row (PyMySQL's own name, for its other callers)."""
        return self._parse_row(packet._data, packet._position, self.converters)

    @staticmethod
    def _parse_row(data: bytes, pos: int, columns: list[tuple[str | None, Any]]) -> tuple[Any, ...]:
        """One row from ``pos`` in ``data``: each column's length-coded value, decoded and
        converted by ``columns`` (each column's encoding and converter)."""
        end = len(data)
        row: list[Any] = []
        append = row.append
        for encoding, converter in columns:
            if pos >= end:  # PyMySQL stops at the packet's end too
                break
            length = data[pos]
            pos += 1
            if length >= _NULL:
                if length == _NULL:
                    append(None)
                    continue
                size = _LENGTH_BYTES[length]
                length = int.from_bytes(data[pos : pos + size], "little")
                pos += size
            value: Any = data[pos : pos + length]
            pos += length
            if encoding is not None:
                value = value.decode(encoding)
            if converter is not None:
                value = converter(value)
            append(value)
        if pos > end:
            raise err.InternalError(f"malformed row packet: {pos - end} bytes missing")
        return tuple(row)


def _fast_columns(converters: list[tuple[str | None, Any]]) -> list[tuple[str | None, Any]]:
    """The result's column converters, with no decoding before ``int`` and ``float``: they read
    the ASCII digits MySQL sends from bytes as from text, to the same value."""
    return [(None, c) if c is int or c is float else (e, c) for e, c in converters]


def _unusual_payload(conn: Any, read: Any, header: bytes) -> bytes:
    """The payload after ``header`` when it is not an ordinary row, as PyMySQL reads it: a
    short read or a wrong sequence number closes the connection with PyMySQL's errors; a
    payload of 16 MB or more continues in the next packets and is joined."""
    parts: list[bytes] = []
    while True:
        if len(header) < 4:
            _lost(conn, None)
        seq = header[3]
        if seq != conn._next_seq_id:
            conn._force_close()
            if seq == 0:  # MariaDB sends an error packet numbered 0 when it shuts down
                raise err.OperationalError(CR.CR_SERVER_LOST, _LOST)
            raise err.InternalError(
                f"Packet sequence number wrong - got {seq} expected {conn._next_seq_id}"
            )
        conn._next_seq_id = (seq + 1) & 0xFF
        size = int.from_bytes(header[:3], "little")
        try:
            data = read(size)
            header = read(4) if size >= _MAX_PACKET else b""
        except BaseException as exc:
            _lost(conn, exc)
        if len(data) < size:
            _lost(conn, None)
        parts.append(data)
        if size < _MAX_PACKET:
            return b"".join(parts)


def _lost(conn: Any, exc: BaseException | None) -> NoReturn:
    """Close the connection after a failed or short read, and raise as PyMySQL does: a
    socket error or short read as ``OperationalError`` (server lost), anything else as it is."""
    conn._force_close()
    if exc is None:
        raise err.OperationalError(CR.CR_SERVER_LOST, _LOST)
    if isinstance(exc, OSError):
        raise err.OperationalError(CR.CR_SERVER_LOST, f"{_LOST} ({exc})") from exc
    raise exc


class Connection(pymysql.connections.Connection):  # type: ignore[misc]
    """PyMySQL's connection, reading buffered results' rows with :class:`_Result`."""

    def _read_query_result(self, unbuffered: bool = False) -> Any:
        if unbuffered:
            return super()._read_query_result(unbuffered=True)
        self._result = None
        result = _Result(self)
        result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return result.affected_rows


def connection_class() -> type[Any]:
    """:class:`Connection` on the PyMySQL versions it was written for, else PyMySQL's own."""
    stock: type[Any] = pymysql.connections.Connection
    return Connection if tuple(pymysql.VERSION[:2]) in VERSIONS else stock
