"""What a trip reports: after each chunk (:class:`ChunkDone`) and at its end (`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


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
