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
from rowferry.chunks.contract import Outcome
from rowferry.dialects.connect import describe
from rowferry.engine import gc_tuning
from rowferry.engine.assembly import Parts
from rowferry.engine.budget import Budget
from rowferry.engine.results import ChunkDone, RunResult
from rowferry.engine.sizing import ChunkSize, ChunkSizer
from rowferry.engine.stops import ChunkTimer, Progress, StopCondition, first_reason
from rowferry.errors import (
    CheckpointConflict,
    MigrationFailed,
    TransientError,
)
from rowferry.migration.spec import Migration
from rowferry.state import identity
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
        self.deadline_wall: dt.datetime | None = None
        self._broken = False

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
        )

    def _loop(
        self,
        conditions: list[StopCondition],
        progress: Progress,
        on_chunk: Callable[[ChunkDone], None] | None,
    ) -> RunResult:
        if self.current.rows_total is None:  # saved with the first checkpoint
            self.current = replace(self.current, rows_total=self._count())
        ceiling = self.chunks.ceiling
        sizer = ChunkSizer.for_trip(self.chunk_size, self.current.seconds_per_row, ceiling)
        timer = ChunkTimer(sizer.size, self.current.seconds_per_row)
        self.after = cursor.decode(self.current.cursor_json)
        collections = gc_tuning.AfterChunks()
        while True:
            limit = self._next_limit(sizer)
            if progress.chunks == 0:
                limit = self._fit_first_chunk(limit, timer, progress)
            timer.chunk_size = limit
            progress.next_chunk_seconds = timer.predict()
            reason = first_reason(conditions, progress) or self._throttled(progress)
            if reason is not None:
                state.end_trip(self.dst, self.current, "stopped")
                return self._result("stopped", reason, progress)
            t0 = time.monotonic()
            outcome = self._retrying(progress)(self._attempt_chunk, timer, limit, sizer.size)
            collections.collect()
            seconds = time.monotonic() - t0
            if outcome.rows_read:
                self._record(outcome, seconds, progress, on_chunk)
            sizer.record(outcome.rows_read, seconds, outcome.bytes_per_row)
            if outcome.last:  # a short chunk (the processor may have cut the limit it got)
                if self.current.status != "done":  # its checkpoint did not say so: no rows
                    state.end_trip(self.dst, self.current, "done")
                return self._result("done", "all rows migrated", progress)

    def _throttled(self, progress: Progress) -> str | None:
        """Wait while a health gate is over its limit; why the trip stops, if it must."""
        throttle = self.budget.throttle
        if throttle is None:
            return None
        if self.budget.seconds is None:
            deadline = time.monotonic() + defaults.THROTTLE_WAIT_SECONDS
        else:
            deadline = progress.started + self.budget.seconds - (progress.next_chunk_seconds or 0)
        waited = throttle.wait(deadline)
        if not waited.throttled:
            return None
        return f"throttled: {', '.join(map(str, waited.over))}"

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

    def _attempt_chunk(self, timer: ChunkTimer, limit: int, next_limit: int) -> Outcome:
        if self._broken:
            self._recover()
        try:
            outcome, self.current = self.chunks.process(
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
        self.after = cursor.decode(fresh.cursor_json)

    def _count(self) -> int:
        stmt = sa.select(sa.func.count()).select_from(self.source.table)
        if self.source.where is not None:
            stmt = stmt.where(self.source.where)
        total = int(self.src.execute(stmt).scalar_one())
        if self.src is not self.dst:
            self.src.rollback()
        return total

    def _lease_until(self) -> dt.datetime:
        grace = dt.timedelta(seconds=self.budget.lease_grace)
        if self.deadline_wall is not None:
            return self.deadline_wall + grace
        ttl = dt.timedelta(seconds=defaults.LEASE_TTL_SECONDS - defaults.LEASE_GRACE_SECONDS)
        return state.utcnow() + grace + ttl

    def _result(
        self, status: Literal["done", "stopped"], reason: str, progress: Progress
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
