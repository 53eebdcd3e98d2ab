"""The Python path's way of doing a chunk (see :mod:`rowferry.chunks.contract`).

Read the keyset slice after the cursor and its related rows (or take it from the read-ahead);
transform; write every target row in bulk; if the target rejects the write, find the rejected
root rows by bisection and set them aside; quarantine the rows that failed. The skeleton then
checkpoints (compare-and-set) and commits.

A rejection is any error of the write that is not transient: the server refusing a value (too
long, out of range, not in its encoding ...) or the writer finding a row it cannot send
(:class:`~rowferry.errors.RowRejected`). Only transient errors (deadlock, lock wait timeout, lost
connection) leave the chunk, to be retried.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from rowferry import cursor, defaults
from rowferry.chunks import memory
from rowferry.chunks.contract import Slice, Written
from rowferry.chunks.prefetch import Prefetcher
from rowferry.chunks.read import Chunk, ChunkReader
from rowferry.chunks.write import BadRows, Writer
from rowferry.errors import MigrationFailed, RowRejected
from rowferry.migration import transform as transforming
from rowferry.migration.spec import Migration
from rowferry.schema import resolve
from rowferry.state import quarantine


class PythonWay:
    """Reads, transforms and writes chunks of one migration in Python."""

    def __init__(
        self,
        migration: Migration,
        src: sa.Connection,
        dst: sa.Connection,
        reader: ChunkReader,
        writer: Writer,
        is_transient: Callable[[Any], bool],
        prefetch: Prefetcher | None = None,
        key_names: Sequence[str] | None = None,
    ) -> None:
        self.migration = migration
        self.src, self.dst = src, dst
        self.reader, self.writer = reader, writer
        self.is_transient = is_transient
        #: reads the next chunk while this one is written
        self.prefetch = prefetch
        #: the root's key (default: the reader's order, which may put a change column first)
        self.key_names = list(key_names or (c.name for c in reader.plan.key))
        self._columns_checked = False

    @property
    def ceiling(self) -> int:
        """The Python path holds a chunk's rows in memory."""
        return defaults.MAX_CHUNK_SIZE

    def read(self, after: cursor.Key | None, limit: int, next_limit: int) -> Slice | None:
        chunk = self.prefetch.take(after, limit) if self.prefetch else None
        if chunk is None:
            chunk = self.reader.read(self.src, after, limit)
            if self.src is not self.dst:
                self.src.rollback()
        if chunk.last_key is None:
            return None
        if self.prefetch and len(chunk.rows) == limit:
            self.prefetch.start(chunk.last_key, next_limit)
        size = memory.bytes_per_row(chunk.rows, chunk.related)
        return Slice(len(chunk.rows), chunk.last_key, chunk, size)

    def write(self, piece: Slice, fence: Callable[[], None]) -> Written:
        chunk: Chunk = piece.data
        result = transforming.apply(self.migration, self.key_names, chunk.rows, chunk.related)
        self._check_columns(result)
        written = self.write_rows(result, fence)
        failures = [(f.key, f.reason, f.source) for f in result.failures]
        quarantine.add(self.dst, self.migration.name, failures)
        return Written(written, len(failures))

    def _check_columns(self, result: transforming.Transformed) -> None:
        if self._columns_checked or not result.groups:
            return
        columns = transforming.output_columns(result.outputs)
        if columns:
            resolve.check_output_columns(self.writer.plan, columns, self.migration)
            self._columns_checked = True

    def write_rows(
        self,
        result: transforming.Transformed,
        fence: Callable[[], None] | None = None,
        *,
        all_bad_fails: bool = True,
    ) -> int:
        """Write every group; if the target rejects some (the server, or the writer before
        sending: :class:`RowRejected`), set those aside as failures. Transient errors escape.

        ``fence`` runs after a rejected write, before looking for the bad rows: a run that lost
        its lease (and so meets the rows its successor wrote) stops there instead.
        ``all_bad_fails``: a chunk of many rows that are all rejected fails (see
        :meth:`_refuse_if_all_bad`); a retry of quarantined rows, which may well all fail
        again, turns that off.
        """
        outputs = result.outputs
        if not outputs:
            return 0
        try:
            return self.writer.write(self.dst, outputs)
        except sa.exc.DBAPIError as exc:
            if self.is_transient(exc):
                raise
            self.dst.rollback()
        except RowRejected:
            self.dst.rollback()
        if fence is not None:
            fence()
        bad = BadRows(self.writer, self.dst, self.is_transient).find(result.groups)
        if all_bad_fails:
            self._refuse_if_all_bad(result, bad)
        rejected = {id(group) for group, _ in bad}
        result.failures += [
            transforming.Failure(g.key, f"target: {why}", g.source) for g, why in bad
        ]
        result.groups = [g for g in result.groups if id(g) not in rejected]
        return self.writer.write(self.dst, result.outputs) if result.groups else 0

    def _refuse_if_all_bad(
        self, result: transforming.Transformed, bad: list[tuple[transforming.Group, str]]
    ) -> None:
        """A chunk of many rows whose every row is rejected points at the target (a missing
        column, a constraint no row meets), not at the rows; a few rows may all be bad ones."""
        if len(bad) == len(result.groups) and len(bad) >= defaults.ALL_BAD_ROWS:
            keys = ", ".join(self.key_names)
            first, last = (self._shown(bad[i][0].key) for i in (0, -1))
            raise MigrationFailed(
                f"migration {self.migration.name!r}: the target rejected every row of the chunk "
                f"({len(bad):,} rows, {keys} {first} to {last}), so the target table itself looks "
                f"wrong (a missing or too small column, a constraint no row meets): {bad[0][1]}. "
                "Nothing of this chunk was written; fix the target table, then run again"
            )

    @staticmethod
    def _shown(key: cursor.Key) -> str:
        return repr(key[0]) if len(key) == 1 else repr(tuple(key))
