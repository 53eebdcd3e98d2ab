"""What a trip may do: its time, chunks, quarantined rows and lease (:class:`Budget`)."""

from __future__ import annotations

from dataclasses import dataclass

from rowferry import defaults
from rowferry.engine.stops import Deadline, MaxChunks, StopCondition
from rowferry.engine.throttle import Throttle


@dataclass(frozen=True)
class Budget:
    """The limits of one trip.

    ``seconds``: wall-clock budget (a chunk predicted to overrun it is not started);
    ``max_chunks``: chunks per trip; ``max_bad_rows``: quarantined root rows per trip before the
    trip fails; ``lease_grace``: the trip's lease lasts until its deadline plus this (without a
    deadline: this + 110 s after each checkpoint), after which another run may take over;
    ``throttle``: health gates read before each chunk (:mod:`rowferry.engine.throttle`): while one
    is over its limit the trip waits, and it stops (``throttled: ...``) when the wait would leave
    no time for the chunk, or after :data:`defaults.THROTTLE_WAIT_SECONDS` without a deadline;
    and the pauses after each chunk (its duty cycle, its fixed pause), which the budget's time
    must fit as a chunk must (:mod:`rowferry.engine.pacing`).
    """

    seconds: float | None = None
    max_chunks: int | None = None
    max_bad_rows: int = defaults.MAX_BAD_ROWS
    lease_grace: float = defaults.LEASE_GRACE_SECONDS
    throttle: Throttle | None = None

    def conditions(self) -> list[StopCondition]:
        found: list[StopCondition] = []
        if self.seconds is not None:
            found.append(Deadline(self.seconds))
        if self.max_chunks is not None:
            found.append(MaxChunks(self.max_chunks))
        return found
