"""The trip: take the lease, then read, transform, write and checkpoint chunks until a stop.

:func:`run` is the one entry point; the CLI, the demo and the tests are thin adapters over it.
Each chunk's writes and its checkpoint commit in one transaction on the target, so a trip can
be killed at any instant and the next one resumes exactly after the last committed chunk.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from . import cursor, defaults, failpoints, schema, state, transforming
from .connections import connect, create_engine, describe, mask_secrets
from .dialects import Dialect, dialect_for
from .errors import MigrationFailed, RowferryError, TransientError
from .reading import ChunkReader
from .spec import Migration, Related, Row
from .stops import ChunkTimer, Deadline, MaxChunks, Progress, StopCondition, first_reason
from .writing import Writer

Bind = str | sa.Engine
log = logging.getLogger("rowferry")


@dataclass(frozen=True)
class Budget:
    """How much one trip may do: wall-clock seconds and/or a number of chunks (None: no limit).

    The trip's lease lasts until its deadline plus ``lease_grace`` seconds (without a deadline:
    ``lease_grace`` + 110 s after each checkpoint); another run may take over after that.
    """

    seconds: float | None = None
    max_chunks: int | None = None
    lease_grace: float = defaults.LEASE_GRACE_SECONDS

    def conditions(self) -> list[StopCondition]:
        found: list[StopCondition] = []
        if self.seconds is not None:
            found.append(Deadline(self.seconds))
        if self.max_chunks is not None:
            found.append(MaxChunks(self.max_chunks))
        return found


@dataclass(frozen=True)
class ChunkDone:
    """Reported to ``on_chunk`` after each committed chunk."""

    migration: str
    rows: int
    written: int
    seconds: float
    trip_rows: int
    rows_done: int
    rows_total: int | None


@dataclass(frozen=True)
class RunResult:
    """How a trip ended. ``status`` is ``done`` or ``stopped`` (run again to continue)."""

    migration: str
    status: Literal["done", "stopped"]
    reason: str
    chunks: int
    rows_read: int
    rows_written: int
    rows_done: int
    rows_total: int | None
    cursor: list[Any] | None
    seconds: float

    @property
    def done(self) -> bool:
        return self.status == "done"


def run(
    migration: Migration,
    source: Bind,
    target: Bind | None = None,
    *,
    budget: Budget | None = None,
    chunk_size: int = defaults.CHUNK_SIZE,
    stop_when: Sequence[StopCondition] = (),
    on_chunk: Callable[[ChunkDone], None] | None = None,
) -> RunResult:
    """Run one trip of ``migration`` from ``source`` to ``target`` (default: the source).

    Returns when the migration is done or a stop condition (the budget, ``stop_when``) says
    stop. Raises :class:`RowferryError` subclasses on failure, after recording the error in the
    state row when that was possible.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    started = time.monotonic()
    budget = budget or Budget()
    with _connections(source, target) as (src, dst):
        trip = _Trip(migration, src, dst, chunk_size, budget.lease_grace)
        conditions = [*budget.conditions(), *stop_when]
        return trip.execute(conditions, started, budget.seconds, on_chunk)


@contextmanager
def _connections(
    source: Bind, target: Bind | None
) -> Iterator[tuple[sa.Connection, sa.Connection]]:
    """One connection per side; a single shared one when both sides are the same database."""
    src_engine = source if isinstance(source, sa.Engine) else create_engine(source)
    same = target is None or str(target if isinstance(target, str) else target.url) == str(
        source if isinstance(source, str) else source.url
    )
    dst_engine = (
        src_engine
        if same or target is None
        else (target if isinstance(target, sa.Engine) else create_engine(target))
    )
    src = connect(src_engine)
    try:
        dst = src if same else connect(dst_engine)
        try:
            yield src, dst
        finally:
            if dst is not src:
                dst.close()
    finally:
        src.close()


class _Trip:
    """One trip of one migration over an open source and target connection."""

    def __init__(
        self,
        migration: Migration,
        src: sa.Connection,
        dst: sa.Connection,
        chunk_size: int,
        lease_grace: float,
    ) -> None:
        self.lease_grace = dt.timedelta(seconds=lease_grace)
        self.migration = migration
        self.src, self.dst = src, dst
        self.chunk_size = chunk_size
        self.source = schema.resolve_source(src, migration)
        self.target = schema.resolve_target(dst, migration, [c.name for c in self.source.key])
        schema.check_copy_columns(self.source, self.target, migration)
        self.reader = ChunkReader(self.source, dialect_for(src))
        self.dst_dialect: Dialect = dialect_for(dst)
        self.writer = Writer(self.target, self.dst_dialect)
        self.owner = state.make_owner()
        self.after: cursor.Key | None = None
        self._columns_checked = False

    def execute(
        self,
        conditions: list[StopCondition],
        started: float,
        seconds: float | None,
        on_chunk: Callable[[ChunkDone], None] | None,
    ) -> RunResult:
        self.deadline_wall = (
            None if seconds is None else state.utcnow() + dt.timedelta(seconds=seconds)
        )
        try:
            current = self._begin()
        except sa.exc.DBAPIError as exc:
            raise self._as_error(exc) from exc
        if current.status == "done":
            return self._result(current, "done", "already done", Progress(started), started)
        self.current = current
        try:
            return self._loop(conditions, started, on_chunk)
        except BaseException as exc:
            error = self._fail(exc)
            if error is exc:
                raise
            raise error from exc

    def _begin(self) -> state.MigrationState:
        """Create the state table if needed and take the lease for this trip."""
        state.ensure_table(self.dst)
        log.info("%s: starting a trip from %s", self.migration.name, describe(self.src.engine.url))
        return state.begin_trip(
            self.dst,
            self.migration.name,
            ",".join(c.name for c in self.source.key),
            self.owner,
            self._lease_until(),
            describe(self.src.engine.url),
        )

    def _loop(
        self,
        conditions: list[StopCondition],
        started: float,
        on_chunk: Callable[[ChunkDone], None] | None,
    ) -> RunResult:
        if self.current.rows_total is None:
            self.current = state.set_total(self.dst, self.current, self._count())
        timer = ChunkTimer(self.chunk_size, self.current.seconds_per_row)
        progress = Progress(started)
        self.after = cursor.decode(self.current.cursor_json)
        while True:
            progress.next_chunk_seconds = timer.predict()
            reason = first_reason(conditions, progress)
            if reason is not None:
                state.end_trip(self.dst, self.current, "stopped")
                return self._result(self.current, "stopped", reason, progress, started)
            t0 = time.monotonic()
            rows, written = self._chunk(timer)
            if rows:
                progress.chunks += 1
                progress.rows += rows
                progress.written += written
                log.debug(
                    "%s: chunk of %d rows committed, cursor %s",
                    self.migration.name,
                    rows,
                    self.current.cursor_json,
                )
                if on_chunk is not None:
                    on_chunk(self._event(rows, written, time.monotonic() - t0, progress))
            if rows < self.chunk_size:  # a short chunk is the last one: no row is left
                state.end_trip(self.dst, self.current, "done")
                return self._result(self.current, "done", "all rows migrated", progress, started)

    def _chunk(self, timer: ChunkTimer) -> tuple[int, int]:
        """Read, transform, write and checkpoint the chunk after ``self.after``; return the
        number of root rows read and of target rows written."""
        t0 = time.monotonic()
        after = self.after
        chunk = self.reader.read(self.src, after, self.chunk_size)
        if self.src is not self.dst:
            self.src.rollback()
        if chunk.last_key is None:
            self.dst.rollback()
            return 0, 0
        cursor.check_advanced(after, chunk.last_key, self.migration.name)
        failpoints.reached("after_read")
        outputs = self._transform(chunk.rows, chunk.related)
        written = self.writer.write(self.dst, outputs) if outputs else 0
        failpoints.reached("after_write")
        timer.record(time.monotonic() - t0, len(chunk.rows))
        self.current = state.checkpoint(
            self.dst,
            self.current,
            cursor.encode(chunk.last_key),
            len(chunk.rows),
            written,
            timer.seconds_per_row,
            self._lease_until(),
        )
        failpoints.reached("before_commit")
        self.dst.commit()
        failpoints.reached("after_commit")
        self.after = chunk.last_key
        return len(chunk.rows), written

    def _transform(self, rows: list[Row], related: list[Related]) -> list[Row]:
        keys = [c.name for c in self.source.key]
        found = transforming.outputs(self.migration, keys, rows, related)
        if found and not self._columns_checked:
            columns = transforming.output_columns(found)
            schema.check_output_columns(self.target, columns, self.migration)
            self._columns_checked = True
        return found

    def _count(self) -> int:
        stmt = sa.select(sa.func.count()).select_from(self.source.table)
        if self.source.where is not None:
            stmt = stmt.where(self.source.where)
        total = int(self.src.execute(stmt).scalar_one())
        if self.src is not self.dst:
            self.src.rollback()
        return total

    def _lease_until(self) -> dt.datetime:
        if self.deadline_wall is not None:
            return self.deadline_wall + self.lease_grace
        ttl = dt.timedelta(seconds=defaults.LEASE_TTL_SECONDS - defaults.LEASE_GRACE_SECONDS)
        return state.utcnow() + self.lease_grace + ttl

    def _event(self, rows: int, written: int, seconds: float, progress: Progress) -> ChunkDone:
        return ChunkDone(
            self.migration.name,
            rows,
            written,
            seconds,
            progress.rows,
            self.current.rows_read,
            self.current.rows_total,
        )

    def _result(
        self,
        current: state.MigrationState,
        status: Literal["done", "stopped"],
        reason: str,
        progress: Progress,
        started: float,
    ) -> RunResult:
        log.info(
            "%s: trip %s (%s): %d chunks, %d rows",
            self.migration.name,
            status,
            reason,
            progress.chunks,
            progress.rows,
        )
        key = cursor.decode(current.cursor_json)
        return RunResult(
            migration=self.migration.name,
            status=status,
            reason=reason,
            chunks=progress.chunks,
            rows_read=progress.rows,
            rows_written=progress.written,
            rows_done=current.rows_read,
            rows_total=current.rows_total,
            cursor=None if key is None else [cursor._encode_value(v) for v in key],
            seconds=time.monotonic() - started,
        )

    def _fail(self, exc: BaseException) -> BaseException:
        """Roll back, record the error in the state row if possible, return the error to raise."""
        for conn in {id(self.src): self.src, id(self.dst): self.dst}.values():
            with suppress(Exception):
                conn.rollback()
        error = self._as_error(exc)
        log.error("%s: trip failed: %s", self.migration.name, error)
        status: state.Status = "failed" if isinstance(exc, Exception) else "stopped"
        with suppress(Exception):
            state.end_trip(self.dst, self.current, status, str(error) or type(exc).__name__)
        return error

    def _as_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, RowferryError) or not isinstance(exc, Exception):
            return exc
        if isinstance(exc, sa.exc.DBAPIError):
            reason = mask_secrets(str(exc.orig)).strip()
            transient = self.reader.dialect.is_transient(exc) or self.dst_dialect.is_transient(exc)
            cls = TransientError if transient else MigrationFailed
            return cls(f"migration {self.migration.name!r}: a statement failed: {reason}")
        return MigrationFailed(
            f"migration {self.migration.name!r}: {type(exc).__name__}: {mask_secrets(str(exc))}"
        )
