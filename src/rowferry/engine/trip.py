"""One trip: take the lease, then process chunks until done or told to stop.

Transient failures (deadlock, lock wait timeout, lost connection) roll the chunk back; the trip
reconnects, re-reads its state row (the authority on what was committed) and tries again, a
bounded number of times. Anything else ends the trip, recorded in the state row as ``failed``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from typing import Literal

import sqlalchemy as sa
import tenacity

from rowferry import cursor, defaults
from rowferry.chunks.contract import Chunks, Outcome
from rowferry.dialects.connect import describe, mask_secrets
from rowferry.engine import follow, gc_tuning
from rowferry.engine.assembly import Parts
from rowferry.engine.budget import Budget
from rowferry.engine.pacing import Pacing
from rowferry.engine.results import ChunkDone, RunResult
from rowferry.engine.sizing import ChunkSize, ChunkSizer
from rowferry.engine.stops import ChunkTimer, Progress, StopCondition
from rowferry.errors import (
    CheckpointConflict,
    MigrationFailed,
    TransientError,
)
from rowferry.migration.follow import Changes
from rowferry.migration.spec import Migration
from rowferry.state import control, identity
from rowferry.state import store as state

log = logging.getLogger("rowferry")


class Trip:
    """One trip of one migration over an open source and target connection."""

    def __init__(
        self,
        migration: Migration,
        src: sa.Connection,
        dst: sa.Connection,
        parts: Parts,
        chunk_size: ChunkSize,
        budget: Budget,
    ) -> None:
        self.migration = migration
        self.src, self.dst = src, dst
        self.parts = parts
        self.source, self.target = parts.source, parts.target
        self.errors = parts.errors
        self.chunks = parts.chunks
        self.chunk_size = chunk_size
        self.budget = budget
        self.owner = state.make_owner()
        self.after: cursor.Key | None = None
        self.resume_from: Callable[[state.MigrationState], cursor.Key | None] = _backlog_cursor
        self.deadline_wall: dt.datetime | None = None
        self._broken = False
        self.pacing = Pacing(
            migration.name, budget, self._read_control, self._end_read, self._keep_lease
        )

    def execute(
        self,
        conditions: list[StopCondition],
        started: float,
        on_chunk: Callable[[ChunkDone], None] | None,
    ) -> RunResult:
        if self.budget.seconds is not None:
            self.deadline_wall = state.utcnow() + dt.timedelta(seconds=self.budget.seconds)
        try:
            return self._execute(conditions, Progress(started), on_chunk)
        finally:
            self.parts.close()

    def _execute(
        self,
        conditions: list[StopCondition],
        progress: Progress,
        on_chunk: Callable[[ChunkDone], None] | None,
    ) -> RunResult:
        self.current = self._retrying(progress)(self._attempt_begin)
        if self.current.status == "done":
            return self._result("done", "already done", progress)
        held = self.pacing.start(self.current)
        if held is not None:  # paused or cancelled: no lease was taken
            return self._result(held.status, held.reason, progress)
        try:
            return self._loop(conditions, progress, on_chunk)
        except BaseException as exc:
            error = self._fail(exc)
            if error is exc:
                raise
            raise error from exc

    def _begin(self) -> state.MigrationState:
        """Take the lease for this trip (creating the state tables if needed)."""
        log.info("%s: starting a trip from %s", self.migration.name, describe(self.src.engine.url))
        return state.begin_trip(
            self.dst,
            self.migration.name,
            identity.of(
                self.migration, self.source, self.target, self.src.dialect, self.dst.dialect
            ),
            self.owner,
            self._lease_until(),
            describe(self.src.engine.url),
            follows=self.migration.follow is not None,
        )

    def _loop(
        self,
        conditions: list[StopCondition],
        progress: Progress,
        on_chunk: Callable[[ChunkDone], None] | None,
    ) -> RunResult:
        if self.current.rows_total is None:  # saved with the first checkpoint
            self.current = replace(self.current, rows_total=self._count())
        position = self._follow_position()
        if position is None or position.phase == "backlog":
            stopped = self._walk(self.chunks, _backlog_cursor, conditions, progress, on_chunk)
            if stopped is not None:
                return stopped
            if position is None:
                if self.current.status != "done":  # the last chunk had no rows to say so
                    state.end_trip(self.dst, self.current, "done")
                return self._result("done", "all rows migrated", progress)
        return self._follow(conditions, progress, on_chunk)

    def _follow_position(self) -> follow.Position | None:
        """A followed migration's position, saved first if its state row has none yet."""
        how = self.migration.follow
        if how is None:
            return None
        position = follow.Position.from_json(self.current.follow_json)
        if position is None:
            position = follow.start(how, self.current, self.src, self.parts.source_dialect)
            self.current = state.save_follow(self.dst, self.current, position.to_json())
        return position

    def _follow(
        self,
        conditions: list[StopCondition],
        progress: Progress,
        on_chunk: Callable[[ChunkDone], None] | None,
    ) -> RunResult:
        """After the backlog: capture what qualified since, up to the watermark."""
        position = follow.Position.from_json(self.current.follow_json)
        assert position is not None and self.parts.follow_chunks is not None
        if position.phase == "backlog":  # the backlog's last chunk had no rows to say so
            position = position.following()
            self.current = state.save_follow(self.dst, self.current, position.to_json())
        how = self.migration.follow
        mark = None
        if isinstance(how, Changes):
            mark = follow.watermark(how, self.src, self.parts.source_dialect)
        chunks = self.parts.follow_chunks(position, mark)
        stopped = self._walk(chunks, _follow_cursor, conditions, progress, on_chunk)
        if stopped is not None:
            return stopped
        if self.current.status != "caught_up":  # the last chunk had no rows to say so
            position = follow.Position.from_json(self.current.follow_json)
            assert position is not None
            if position.phase == "sweep" and position.after is not None:
                ended = replace(position, after=None, rounds=position.rounds + 1)
                self.current = state.save_follow(self.dst, self.current, ended.to_json())
            state.end_trip(self.dst, self.current, "caught_up")
        upto = "the end of its keys" if mark is None else f"{mark.isoformat(sep=' ')}"
        return self._result("caught_up", f"caught up with the source to {upto}", progress)

    def _walk(
        self,
        chunks: Chunks,
        resume_from: Callable[[state.MigrationState], cursor.Key | None],
        conditions: list[StopCondition],
        progress: Progress,
        on_chunk: Callable[[ChunkDone], None] | None,
    ) -> RunResult | None:
        """Process ``chunks`` from where the state row says (``resume_from``) until the last
        one (None) or a stop (the trip's result, its lease released)."""
        self.resume_from = resume_from
        self.after = resume_from(self.current)
        sizer = ChunkSizer.for_trip(self.chunk_size, self.current.seconds_per_row, chunks.ceiling)
        timer = ChunkTimer(sizer.size, self.current.seconds_per_row)
        collections = gc_tuning.AfterChunks()
        while True:
            sizer.retarget(self.pacing.chunk_seconds)
            limit = self._next_limit(sizer)
            if progress.chunks == 0:
                limit = self._fit_first_chunk(limit, timer, progress)
            timer.chunk_size = limit
            progress.next_chunk_seconds = timer.predict()
            stop = self.pacing.before_chunk(progress, conditions)
            self.current = self.pacing.noted(self.current)
            if stop is not None:
                state.end_trip(self.dst, self.current, "stopped")
                return self._result(stop.status, stop.reason, progress)
            sizer.retarget(self.pacing.chunk_seconds)  # also for the chunk read ahead now
            t0 = time.monotonic()
            outcome = self._retrying(progress)(
                self._attempt_chunk, chunks, timer, limit, sizer.size
            )
            collections.collect()
            seconds = time.monotonic() - t0
            self.pacing.after_chunk(seconds)
            if outcome.rows_read:
                self._record(outcome, seconds, progress, on_chunk)
            sizer.record(outcome.rows_read, seconds, outcome.bytes_per_row)
            if outcome.last:  # a short chunk (the way may have cut the limit it got)
                return None

    def _record(
        self,
        outcome: Outcome,
        seconds: float,
        progress: Progress,
        on_chunk: Callable[[ChunkDone], None] | None,
    ) -> None:
        progress.chunks += 1
        progress.rows_read += outcome.rows_read
        progress.rows_written += outcome.rows_written
        progress.rows_quarantined += outcome.rows_quarantined
        log.debug(
            "%s: chunk of %d rows committed (%d quarantined), cursor %s",
            self.migration.name,
            outcome.rows_read,
            outcome.rows_quarantined,
            self.current.cursor_json,
        )
        if on_chunk is not None:
            on_chunk(
                ChunkDone(
                    self.migration.name,
                    outcome.rows_read,
                    outcome.rows_written,
                    outcome.rows_quarantined,
                    seconds,
                    progress.rows_read,
                    self.current.rows_read,
                    self.current.rows_total,
                )
            )
        if progress.rows_quarantined > self.budget.max_bad_rows:
            raise MigrationFailed(
                f"migration {self.migration.name!r}: {progress.rows_quarantined} rows "
                f"quarantined in this run, more than max_bad_rows={self.budget.max_bad_rows}. "
                f"See 'rowferry quarantine {self.migration.name}', fix the cause, then run again"
            )

    def _attempt_begin(self) -> state.MigrationState:
        if self._broken:
            self._reconnect()
        try:
            return self._begin()
        except sa.exc.DBAPIError as exc:
            self._broken = self.errors.is_transient(exc)
            raise self._as_error(exc) from exc

    def _retrying(self, progress: Progress) -> tenacity.Retrying:
        """Retry policy for transient errors: bounded, exponential backoff with jitter."""

        def before_sleep(retry: tenacity.RetryCallState) -> None:
            progress.retries += 1
            error = retry.outcome.exception() if retry.outcome else None
            log.warning(
                "%s: transient error, chunk rolled back, retry %d: %s",
                self.migration.name,
                retry.attempt_number,
                error,
            )

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            stop=tenacity.stop_after_attempt(defaults.RETRY_ATTEMPTS),
            wait=tenacity.wait_exponential(multiplier=0.1, max=defaults.RETRY_MAX_WAIT_SECONDS)
            + tenacity.wait_random(0, 0.1),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _next_limit(self, sizer: ChunkSizer) -> int:
        """The sizer's choice, unless a chunk is already being read ahead at another size."""
        prefetch = self.parts.prefetch
        return (prefetch.pending_limit if prefetch else None) or sizer.size

    def _fit_first_chunk(self, limit: int, timer: ChunkTimer, progress: Progress) -> int:
        """A trip's first chunk is cut to the rows predicted to fit the time left.

        The prediction starts from the per-row rate stored by earlier trips; one slow trip (a
        loaded machine, a cold cache) would otherwise leave a rate that makes every later trip
        stop before its first chunk, so no trip would ever measure a better one.
        """
        if self.budget.seconds is None:
            return limit
        left = progress.started + self.budget.seconds - time.monotonic()
        fits = timer.rows_within(left)
        if fits is None or fits == 0 or fits >= limit:
            return limit  # when not one row fits, the deadline stops the trip
        return fits

    def _attempt_chunk(
        self, chunks: Chunks, timer: ChunkTimer, limit: int, next_limit: int
    ) -> Outcome:
        if self._broken:
            self._recover()
        try:
            outcome, self.current = chunks.process(
                self.current, self.after, limit, timer, self._lease_until(), next_limit
            )
        except sa.exc.DBAPIError as exc:
            if not self.errors.is_transient(exc):
                raise
            self._broken = True
            raise self._as_error(exc) from exc
        if outcome.last_key is not None:
            self.after = outcome.last_key
        return outcome

    def _reconnect(self) -> None:
        """Drop both connections; the next statement on each opens a new one."""
        for conn in {id(self.src): self.src, id(self.dst): self.dst}.values():
            with suppress(Exception):
                conn.invalidate()
            with suppress(Exception):
                conn.rollback()
        self._broken = False

    def _recover(self) -> None:
        """Reconnect both sides and continue from what the state row says was committed."""
        self._reconnect()
        fresh = state.read(self.dst, self.migration.name)
        self.dst.rollback()
        if fresh is None or fresh.token != self.current.token:
            raise CheckpointConflict(
                f"migration {self.migration.name!r}: another run took over while this one "
                "was reconnecting; nothing more is written by this run"
            )
        self.current = fresh
        self.after = self.resume_from(fresh)

    def _count(self) -> int:
        stmt = sa.select(sa.func.count()).select_from(self.source.table)
        if self.source.where is not None:
            stmt = stmt.where(self.source.where)
        total = int(self.src.execute(stmt).scalar_one())
        if self.src is not self.dst:
            self.src.rollback()
        return total

    def _read_control(self, progress: Progress) -> control.Control | None:
        """What the migration is told from outside, read in the transaction the next chunk
        goes on in; retried after a transient error as a chunk is."""
        return self._retrying(progress)(self._attempt_read_control)

    def _attempt_read_control(self) -> control.Control | None:
        if self._broken:
            self._recover()
        try:
            return control.read(self.dst, self.migration.name, end=False)
        except sa.exc.DBAPIError as exc:
            if not self.errors.is_transient(exc):
                raise
            self._broken = True
            raise self._as_error(exc) from exc

    def _end_read(self) -> None:
        with suppress(Exception):
            self.dst.rollback()

    def _keep_lease(self) -> None:
        """Extend the lease of a trip without a time budget while it waits between chunks,
        once :data:`~rowferry.defaults.LEASE_RENEW_SECONDS` have passed since it was set (a
        trip with a deadline holds it past the deadline); after a transient error, at the
        next call."""
        until = self.current.lease_until
        if self.deadline_wall is not None or until is None:
            return
        set_at = until - dt.timedelta(seconds=defaults.LEASE_TTL_SECONDS)
        if (state.utcnow() - set_at).total_seconds() < defaults.LEASE_RENEW_SECONDS:
            return
        try:
            self.current = state.extend_lease(self.dst, self.current, self._lease_until())
        except sa.exc.DBAPIError as exc:
            self._after_transient(exc)

    def _after_transient(self, exc: sa.exc.DBAPIError) -> None:
        if not self.errors.is_transient(exc):
            raise exc
        error = mask_secrets(str(exc.orig))
        log.warning("%s: transient error between chunks: %s", self.migration.name, error)
        with suppress(Exception):
            self.dst.rollback()
        self._broken = True

    def _lease_until(self) -> dt.datetime:
        grace = dt.timedelta(seconds=self.budget.lease_grace)
        if self.deadline_wall is not None:
            return self.deadline_wall + grace
        ttl = dt.timedelta(seconds=defaults.LEASE_TTL_SECONDS - defaults.LEASE_GRACE_SECONDS)
        return state.utcnow() + grace + ttl

    def _result(
        self,
        status: Literal["done", "stopped", "caught_up", "paused", "cancelled"],
        reason: str,
        progress: Progress,
    ) -> RunResult:
        log.info(
            "%s: trip %s (%s): %d chunks, %d rows, %d quarantined, %d retries",
            self.migration.name,
            status,
            reason,
            progress.chunks,
            progress.rows_read,
            progress.rows_quarantined,
            progress.retries,
        )
        key = cursor.decode(self.current.cursor_json)
        return RunResult(
            migration=self.migration.name,
            status=status,
            reason=reason,
            chunks=progress.chunks,
            rows_read=progress.rows_read,
            rows_written=progress.rows_written,
            rows_quarantined=progress.rows_quarantined,
            retries=progress.retries,
            rows_done=self.current.rows_read,
            rows_total=self.current.rows_total,
            cursor=None if key is None else cursor.to_json(key),
            seconds=time.monotonic() - progress.started,
            next_chunk_seconds=progress.next_chunk_seconds if status == "stopped" else None,
            gate_wait_seconds=self.pacing.gate_wait_seconds,
            pause_seconds=self.pacing.pause_seconds,
            gate_readings=self.pacing.readings,
        )

    def _fail(self, exc: BaseException) -> BaseException:
        """Roll back, record the error in the state row if possible, return the error to raise."""
        for conn in {id(self.src): self.src, id(self.dst): self.dst}.values():
            with suppress(Exception):
                conn.rollback()
        error = self._as_error(exc)
        log.error("%s: trip failed: %s", self.migration.name, error)
        status: state.Status = "failed" if isinstance(exc, Exception) else "stopped"
        if not isinstance(error, CheckpointConflict):  # the state row is another run's now
            with suppress(Exception):
                state.end_trip(self.dst, self.current, status, str(error) or type(exc).__name__)
        return error

    def _as_error(self, exc: BaseException) -> BaseException:
        return self.errors.as_error(exc, f"migration {self.migration.name!r}")


def _backlog_cursor(current: state.MigrationState) -> cursor.Key | None:
    return cursor.decode(current.cursor_json)


def _follow_cursor(current: state.MigrationState) -> cursor.Key | None:
    position = follow.Position.from_json(current.follow_json)
    return None if position is None else position.after
