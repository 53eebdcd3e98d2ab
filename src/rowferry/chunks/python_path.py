"""One chunk from start to finish, in one transaction on the target.

Read the keyset slice after the cursor and its related rows; transform; write every target row
in bulk; if the target rejects the write, find the rejected root rows by bisection and set them
aside; quarantine the rows that failed; checkpoint (compare-and-set); COMMIT.

A rejection is any error of the write that is not transient: the server refusing a value (too
long, out of range, not in its encoding ...) or the writer finding a row it cannot send
(:class:`~rowferry.errors.RowRejected`). Only transient errors (deadlock, lock wait timeout, lost
connection) leave the chunk, to be retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rowferry import defaults
from rowferry.chunks.prefetch import Prefetcher
from rowferry.chunks.read import Chunk, ChunkReader
from rowferry.chunks.write import BadRows, Writer
from rowferry.engine import failpoints, sizing
from rowferry.engine.stops import ChunkTimer
from rowferry.errors import CheckpointConflict, MigrationFailed, RowRejected
from rowferry.migration import transform as transforming
from rowferry.migration.spec import Migration
from rowferry.schema import resolve
from rowferry.state import cursor, quarantine
from rowferry.state import store as state


@dataclass(frozen=True)
class Outcome:
    """What one committed chunk did."""

    rows: int
    written: int
    quarantined: int
    last_key: cursor.Key | None
    #: fewer root rows than asked for: no rows are left after this chunk
    last: bool
    #: estimated Python memory of one root row with its related rows (None: not measured)
    bytes_per_row: float | None = None


def commit(
    conn: sa.Connection,
    current: state.MigrationState,
    last_key: cursor.Key,
    counts: tuple[int, int, int],
    seconds_per_row: float | None,
    lease_until: Any,
    *,
    last: bool,
) -> state.MigrationState:
    """Checkpoint a chunk (rows read, written, quarantined) in its transaction, then COMMIT;
    the ``last`` chunk also marks the migration done."""
    rows, written, quarantined = counts
    current = state.checkpoint(
        conn,
        current,
        cursor.encode(last_key),
        rows,
        written,
        quarantined,
        seconds_per_row,
        lease_until,
        last=last,
    )
    failpoints.reached("before_commit")
    conn.commit()
    failpoints.reached("after_commit")
    return current


class ChunkProcessor:
    """Processes chunks of one migration over an open source and target connection."""

    def __init__(
        self,
        migration: Migration,
        src: sa.Connection,
        dst: sa.Connection,
        reader: ChunkReader,
        writer: Writer,
        is_transient: Callable[[Any], bool],
    ) -> None:
        self.migration = migration
        self.src, self.dst = src, dst
        self.reader, self.writer = reader, writer
        self.is_transient = is_transient
        self.key_names = [c.name for c in reader.plan.key]
        self._columns_checked = False
        #: reads the next chunk while this one is written (the trip sets it up)
        self.prefetch: Prefetcher | None = None
        #: the size the next chunk will have (an adaptive trip sets it; default: this one's)
        self.next_limit: Callable[[], int] | None = None

    @property
    def ceiling(self) -> int:
        """The most root rows "auto" gives a chunk: the Python path holds a chunk's rows."""
        return defaults.MAX_CHUNK_SIZE

    def process(
        self,
        current: state.MigrationState,
        after: cursor.Key | None,
        limit: int,
        timer: ChunkTimer,
        lease_until: Any,
    ) -> tuple[Outcome, state.MigrationState]:
        """Process and commit the chunk after ``after``; return what it did and the new state."""
        started = time.monotonic()
        chunk = self._read(after, limit)
        if chunk.last_key is None:
            self.dst.rollback()
            return Outcome(0, 0, 0, None, last=True), current
        cursor.check_advanced(after, chunk.last_key, self.migration.name)
        failpoints.reached("after_read")
        result = transforming.apply(self.migration, self.key_names, chunk.rows, chunk.related)
        self._check_columns(result)
        written = self.write(result, fence=lambda: self._check_lease(current))
        failpoints.reached("after_write")
        failures = [(f.key, f.reason, f.source) for f in result.failures]
        quarantine.add(self.dst, self.migration.name, failures)
        timer.record(time.monotonic() - started, len(chunk.rows))
        last = len(chunk.rows) < limit  # a short chunk is the last one
        current = commit(
            self.dst,
            current,
            chunk.last_key,
            (len(chunk.rows), written, len(failures)),
            timer.seconds_per_row,
            lease_until,
            last=last,
        )
        size = sizing.bytes_per_row(chunk.rows, chunk.related)
        rows = len(chunk.rows)
        return Outcome(rows, written, len(failures), chunk.last_key, last, size), current

    def _read(self, after: cursor.Key | None, limit: int) -> Chunk:
        chunk = self.prefetch.take(after, limit) if self.prefetch else None
        if chunk is None:
            chunk = self.reader.read(self.src, after, limit)
            if self.src is not self.dst:
                self.src.rollback()
        if self.prefetch and chunk.last_key is not None and len(chunk.rows) == limit:
            self.prefetch.start(chunk.last_key, self.next_limit() if self.next_limit else limit)
        return chunk

    def _check_lease(self, current: state.MigrationState) -> None:
        found = state.read(self.dst, self.migration.name)
        self.dst.rollback()
        if found is None or found.token != current.token:
            raise CheckpointConflict(
                f"migration {self.migration.name!r}: another run took over this run's lease; "
                "nothing from this chunk was committed"
            )

    def _check_columns(self, result: transforming.Transformed) -> None:
        if self._columns_checked or not result.groups:
            return
        columns = transforming.output_columns(result.outputs)
        if columns:
            resolve.check_output_columns(self.writer.plan, columns, self.migration)
            self._columns_checked = True

    def write(
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
