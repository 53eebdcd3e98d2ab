"""What a trip may do (:class:`Budget`) and what it reports (:class:`ChunkDone`, `RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from . import defaults
from .stops import Deadline, MaxChunks, StopCondition


@dataclass(frozen=True)
class Budget:
    """The limits of one trip.

    ``seconds``: wall-clock budget (a chunk predicted to overrun it is not started);
    ``max_chunks``: chunks per trip; ``max_bad_rows``: quarantined root rows per trip before the
    trip fails; ``lease_grace``: the trip's lease lasts until its deadline plus this (without a
    deadline: this + 110 s after each checkpoint), after which another run may take over.
    """

    seconds: float | None = None
    max_chunks: int | None = None
    max_bad_rows: int = defaults.MAX_BAD_ROWS
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
    quarantined: int
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
    rows_quarantined: int
    retries: int
    rows_done: int
    rows_total: int | None
    cursor: list[Any] | None
    seconds: float
    #: a trip that stopped: the predicted duration of the chunk it did not start (``None``
    #: when done, or before any prediction); with ``seconds`` it shows why a budget stopped it
    next_chunk_seconds: float | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"
