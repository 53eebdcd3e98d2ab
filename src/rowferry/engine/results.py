"""What a trip reports: after each chunk (:class:`ChunkDone`) and at its end (`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rowferry.engine.throttle import Reading


@dataclass(frozen=True)
class ChunkDone:
    """Reported to ``on_chunk`` after each committed chunk: this chunk's rows, this trip's
    (``trip_rows_read``), and the migration's so far (``rows_done`` of ``rows_total``)."""

    migration: str
    rows_read: int
    rows_written: int
    rows_quarantined: int
    seconds: float
    trip_rows_read: int
    rows_done: int
    rows_total: int | None

    # The earlier names of the counters, kept for callbacks that use them.

    @property
    def rows(self) -> int:
        return self.rows_read

    @property
    def written(self) -> int:
        return self.rows_written

    @property
    def quarantined(self) -> int:
        return self.rows_quarantined

    @property
    def trip_rows(self) -> int:
        return self.trip_rows_read


@dataclass(frozen=True)
class RunResult:
    """How a trip ended. ``status`` is ``done``, ``stopped`` (run again to continue), for a
    migration that follows its source ``caught_up`` (run again to capture later changes), or
    ``paused`` or ``cancelled`` from outside (:mod:`rowferry.state.control`): a paused
    migration's trips do nothing until it is resumed, a cancelled one's until it is reset."""

    migration: str
    status: Literal["done", "stopped", "caught_up", "paused", "cancelled"]
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
    #: seconds this trip waited for its health gates, and paused after chunks (duty cycle,
    #: fixed pause): :attr:`throttled_seconds` in all
    gate_wait_seconds: float = 0.0
    pause_seconds: float = 0.0
    #: the last reading of each gate (none without gates, or before the first reading)
    gate_readings: tuple[Reading, ...] = ()

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def throttled_seconds(self) -> float:
        return self.gate_wait_seconds + self.pause_seconds

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON values (``done`` and ``throttled_seconds`` included)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["gate_readings"] = [r.as_dict() for r in self.gate_readings]
        return data | {"done": self.done, "throttled_seconds": self.throttled_seconds}
