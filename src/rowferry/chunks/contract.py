"""The chunk contract: what each way of doing a chunk supplies (:class:`ChunkWay`), and the one
skeleton every chunk goes through (:class:`Chunks`).

A chunk is read, written and committed with its checkpoint in one transaction on the target.
The ways differ in how they read and write: the Python path reads the rows, transforms them and
writes them in bulk (:mod:`rowferry.chunks.python_path`); pushdown has the database build them
with ``INSERT ... SELECT`` (:mod:`rowferry.chunks.pushdown`). Everything else is here, once:
an empty chunk ends the migration, the cursor must advance, failpoints mark each step, the
timer measures, a short chunk is the last one, and the checkpoint commits with the writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from rowferry import cursor
from rowferry.chunks import failpoints
from rowferry.errors import CheckpointConflict
from rowferry.state import store as state


@dataclass(frozen=True)
class Slice:
    """A chunk's root rows as a way has read them."""

    rows_read: int
    last_key: cursor.Key
    #: what the way reads back when it writes the chunk (its rows, or its bounds)
    data: Any
    #: estimated Python memory of one root row with its related rows (None: not measured)
    bytes_per_row: float | None = None


@dataclass(frozen=True)
class Written:
    """What a way's write did, inside the chunk's transaction."""

    rows_written: int
    rows_quarantined: int = 0


@dataclass(frozen=True)
class Outcome:
    """What one committed chunk did."""

    rows_read: int
    rows_written: int
    rows_quarantined: int
    last_key: cursor.Key | None
    #: fewer root rows than asked for: no rows are left after this chunk
    last: bool
    bytes_per_row: float | None = None


#: no rows were left: nothing was written or committed
NOTHING_LEFT = Outcome(0, 0, 0, None, last=True)


class Timer(Protocol):
    """Measures chunks (the trip's :class:`rowferry.engine.stops.ChunkTimer`)."""

    @property
    def seconds_per_row(self) -> float | None: ...

    def record(self, seconds: float, rows: int) -> None: ...


class ChunkWay(Protocol):
    """One way of reading and writing a chunk."""

    #: the target connection, where each chunk's writes commit with its checkpoint
    dst: sa.Connection

    @property
    def ceiling(self) -> int:
        """The most root rows ``"auto"`` gives one chunk of this way."""
        ...

    def read(self, after: cursor.Key | None, limit: int, next_limit: int) -> Slice | None:
        """The chunk of at most ``limit`` root rows after ``after``; None when none are left.
        ``next_limit``: the size the chunk after it will likely have (to read it ahead)."""
        ...

    def write(self, piece: Slice, fence: Callable[[], None]) -> Written | None:
        """Write the chunk's target rows, uncommitted. None: this way could not (the chunk is
        rolled back, and the fallback way does it). ``fence`` raises if another run has taken
        the lease; a way calls it before looking into a rejected write."""
        ...


class Checkpoint(Protocol):
    """Records a chunk in its transaction and commits it (:func:`commit` by default)."""

    def __call__(
        self,
        conn: sa.Connection,
        current: state.MigrationState,
        last_key: cursor.Key,
        counts: tuple[int, int, int],
        seconds_per_row: float | None,
        lease_until: Any,
        last: bool,
    ) -> state.MigrationState: ...


class Chunks:
    """The skeleton of every chunk, around one way (and the way to fall back to)."""

    def __init__(
        self,
        way: ChunkWay,
        name: str,
        fallback: Chunks | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.way = way
        self.name = name
        self.fallback = fallback
        self.checkpoint: Checkpoint = checkpoint or commit

    @property
    def ceiling(self) -> int:
        return self.way.ceiling

    def process(
        self,
        current: state.MigrationState,
        after: cursor.Key | None,
        limit: int,
        timer: Timer,
        lease_until: Any,
        next_limit: int,
    ) -> tuple[Outcome, state.MigrationState]:
        """Process and commit the chunk after ``after``; return what it did and the new state."""
        started = time.monotonic()
        piece = self.way.read(after, limit, next_limit)
        if piece is None:
            self.way.dst.rollback()
            return NOTHING_LEFT, current
        cursor.check_advanced(after, piece.last_key, self.name)
        failpoints.reached("after_read")
        written = self.way.write(piece, lambda: check_lease(self.way.dst, self.name, current))
        if written is None:
            assert self.fallback is not None, "a way without a fallback always writes"
            piece_size = min(limit, self.fallback.ceiling)
            return self.fallback.process(current, after, piece_size, timer, lease_until, next_limit)
        failpoints.reached("after_write")
        timer.record(time.monotonic() - started, piece.rows_read)
        last = piece.rows_read < limit  # a short chunk is the last one
        counts = (piece.rows_read, written.rows_written, written.rows_quarantined)
        current = self.checkpoint(
            self.way.dst, current, piece.last_key, counts, timer.seconds_per_row, lease_until, last
        )
        outcome = Outcome(*counts, piece.last_key, last, piece.bytes_per_row)
        return outcome, current


def commit(
    conn: sa.Connection,
    current: state.MigrationState,
    last_key: cursor.Key,
    counts: tuple[int, int, int],
    seconds_per_row: float | None,
    lease_until: Any,
    last: bool,
    *,
    follow_json: str | None = None,
) -> state.MigrationState:
    """Checkpoint a chunk of the backlog (rows read, written, quarantined) in its transaction,
    then COMMIT; the ``last`` chunk also marks the migration done. ``follow_json``: a followed
    migration's position, saved with the chunk."""
    rows_read, rows_written, rows_quarantined = counts
    current = state.checkpoint(
        conn,
        current,
        cursor.encode(last_key),
        rows_read,
        rows_written,
        rows_quarantined,
        seconds_per_row,
        lease_until,
        last=last,
        follow_json=follow_json,
    )
    return committed(conn, current)


def committed(conn: sa.Connection, current: state.MigrationState) -> state.MigrationState:
    """COMMIT a chunk whose checkpoint is recorded, between its two failpoints."""
    failpoints.reached("before_commit")
    conn.commit()
    failpoints.reached("after_commit")
    return current


def check_lease(conn: sa.Connection, name: str, current: state.MigrationState) -> None:
    """Raise :class:`CheckpointConflict` if another run has taken this run's lease."""
    found = state.read(conn, name)
    conn.rollback()
    if found is None or found.token != current.token:
        raise CheckpointConflict(
            f"migration {name!r}: another run took over this run's lease; "
            "nothing from this chunk was committed"
        )
