"""Reading the next chunk while the current one is transformed and written.

A keyset chunk's end is known as soon as it is read, so the next chunk can be read at once, on a
second source connection in a background thread, while this chunk is transformed, written and
committed. The database works on the next read while Python works on this chunk: on two cores
that hides most of the read time (bench/compare-report.md gives the figures).

Nothing is written from the background thread, and a read is only used when the main thread
asks for exactly that chunk (same cursor, same size); anything else (a retry that re-read the
state row, a stop, an error in the background) throws it away and the main thread reads itself.
At most one chunk is read ahead, so memory holds at most two chunks.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress

import sqlalchemy as sa

from rowferry import cursor
from rowferry.chunks.read import Chunk, ChunkReader
from rowferry.dialects.connect import connect

log = logging.getLogger("rowferry")


class Prefetcher:
    """Reads one chunk ahead on a connection of its own."""

    def __init__(self, reader: ChunkReader, engine: sa.Engine) -> None:
        self.reader = reader
        self.engine = engine
        self._conn: sa.Connection | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rowferry-prefetch")
        self._pending: tuple[cursor.Key, int, Future[Chunk]] | None = None

    def start(self, after: cursor.Key, limit: int) -> None:
        """Begin reading the chunk of ``limit`` rows after ``after``."""
        self.discard()
        self._pending = (after, limit, self._pool.submit(self._read, after, limit))

    @property
    def pending_limit(self) -> int | None:
        """The size of the chunk being read ahead, if any."""
        return None if self._pending is None else self._pending[1]

    def take(self, after: cursor.Key | None, limit: int) -> Chunk | None:
        """The chunk read ahead if it is the one asked for, else ``None`` (read it yourself)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        wanted = pending[0] == after and pending[1] == limit
        try:
            chunk = pending[2].result()
        except Exception as exc:  # the main thread's own read will meet it, or not
            log.debug("read-ahead failed, the chunk is read again: %s", exc)
            self._drop_connection()
            return None
        return chunk if wanted else None

    def discard(self) -> None:
        """Forget a read in progress (waiting for it: its connection is busy until then)."""
        self.take(None, -1)

    def close(self) -> None:
        self.discard()
        self._pool.shutdown(wait=True)
        if self._conn is not None:
            with suppress(Exception):
                self._conn.close()
            self._conn = None

    def _read(self, after: cursor.Key, limit: int) -> Chunk:
        if self._conn is None:
            self._conn = connect(self.engine)
        try:
            return self.reader.read(self._conn, after, limit)
        finally:
            self._conn.rollback()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with suppress(Exception):
                self._conn.invalidate()
            with suppress(Exception):
                self._conn.close()
            self._conn = None
