"""Between two chunks: what the migration is told from outside, its health gates, its pauses.

Before each chunk a trip asks :meth:`Pacing.before_chunk`, which

1. asks the trip's stop conditions (the budget, a chunk limit, a signal ...);
2. reads the migration's control from its state row (:mod:`rowferry.state.control`; before
   the trip's first chunk, what the lease's read found): a paused
   or cancelled migration's trip stops there (status ``paused`` or ``cancelled``), and new
   settings take effect: the chunk duration to aim at (:attr:`Pacing.chunk_seconds`), the
   gates' limits, the share of the time, the fixed pause;
3. pauses as long as the chunk before asked (:meth:`Pacing.after_chunk`: the duty cycle's
   pause and the fixed one). A pause that would leave no time for the next chunk in the budget
   stops the trip as the budget does (``time budget: ...``);
4. waits while a gate is over its limit, as long as the budget leaves time for the chunk, or
   :data:`~rowferry.defaults.THROTTLE_WAIT_SECONDS` without a time budget; then the trip
   stops (``throttled: <readings>``).

Before it pauses or waits, it ends the read of the control (a chunk that follows at once goes
on in that transaction: one statement between two chunks); after each slice of at most two
seconds, it keeps the trip's lease alive (a trip without a time budget would otherwise lose it
in a long wait) and stops early for a signal or for a pause or cancel from outside. It counts
the seconds spent waiting and pausing, and keeps the last reading of each gate, for the trip's
result and its state row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from rowferry import defaults
from rowferry.engine.budget import Budget
from rowferry.engine.stops import Progress, SignalStop, StopCondition, first_reason
from rowferry.engine.throttle import DutyCycle, Reading, Throttle
from rowferry.state import control
from rowferry.state.store import MigrationState

#: the settings that replace the limits of gates, by kind
_LIMITS = ("max_replica_lag", "max_threads_running", "max_history_length")

_HELD = {
    "paused": "paused from outside: 'rowferry resume {name}' lets it continue",
    "cancelled": "cancelled from outside; it keeps what it wrote, and 'rowferry reset {name}' "
    "starts it over",
}


@dataclass(frozen=True)
class Stop:
    """Why a trip stops before a chunk, and the status it ends with."""

    status: Literal["stopped", "paused", "cancelled"]
    reason: str


class Pacing:
    """A trip's pacing between chunks (see the module's description).

    ``read_control`` reads the migration's control from its state row and ``end_read`` ends
    that read's transaction; ``keep_lease`` extends the trip's lease when it is due.
    """

    def __init__(
        self,
        name: str,
        budget: Budget,
        read_control: Callable[[Progress], control.Control | None],
        end_read: Callable[[], None],
        keep_lease: Callable[[], None],
    ) -> None:
        self.name = name
        self.seconds = budget.seconds
        self.throttle = budget.throttle or Throttle([])
        self.read_control = read_control
        self.end_read = end_read
        self.keep_lease = keep_lease
        self.hold: control.Hold | None = None
        self.settings = control.Settings()
        #: the gates' limits that the settings replace, by kind (read at each reading)
        self.limits: dict[str, float] = {}
        self.gate_wait_seconds = 0.0
        self.pause_seconds = 0.0
        self.readings: tuple[Reading, ...] = ()
        self._owed = 0.0
        self._before = 0.0
        self._interrupted: Stop | None = None
        self._told_at_start = False

    @property
    def chunk_seconds(self) -> float:
        """The duration ``chunk_size="auto"`` aims each chunk at."""
        return self.settings.chunk_seconds or defaults.TARGET_CHUNK_SECONDS

    def start(self, current: MigrationState) -> Stop | None:
        """Take what the state row says as the trip begins; the stop when it is held."""
        self._before = current.throttled_seconds or 0.0
        self._take(control.of(current))
        self._told_at_start = True
        return self._held()

    def before_chunk(self, progress: Progress, conditions: list[StopCondition]) -> Stop | None:
        """Why the trip stops before its next chunk, or None once it may start it."""
        reason = first_reason(conditions, progress)
        if reason is not None:
            return Stop("stopped", reason)
        if not self._told_at_start:  # the first chunk follows the lease's read at once
            self._take(self.read_control(progress))
        self._told_at_start = False
        urgent: list[StopCondition] = [c for c in conditions if isinstance(c, SignalStop)]
        return (
            self._held() or self._rest(progress, urgent) or self._wait_for_gates(progress, urgent)
        )

    def after_chunk(self, seconds: float) -> None:
        """Owe the pause that a chunk of ``seconds`` asks for, taken before the next one."""
        share = self.settings.max_load
        duty = self.throttle.duty_cycle if share is None else DutyCycle(share / 100)
        fixed = self.settings.sleep
        self._owed = (duty.pause_after(seconds) if duty else 0.0) + (
            self.throttle.pause_seconds if fixed is None else fixed
        )

    def noted(self, current: MigrationState) -> MigrationState:
        """``current`` with this trip's throttling added to the migration's and its last gate
        readings, for the next write of the state row."""
        gates = json.dumps([r.as_dict() for r in self.readings]) if self.readings else None
        total = self._before + self.gate_wait_seconds + self.pause_seconds
        return replace(
            current, throttled_seconds=round(total, 3), gates_json=gates or current.gates_json
        )

    def _take(self, told: control.Control | None) -> None:
        if told is None:  # the row is gone (a reset): the next checkpoint fails on it
            return
        self.hold = told.hold
        self.settings = told.settings
        given = told.settings.items()
        self.limits.clear()
        self.limits.update({k: given[k] for k in _LIMITS if k in given})

    def _held(self) -> Stop | None:
        if self.hold is None:
            return None
        return Stop(self.hold, _HELD[self.hold].format(name=self.name))

    def _rest(self, progress: Progress, urgent: list[StopCondition]) -> Stop | None:
        seconds, self._owed = self._owed, 0.0
        if seconds <= 0:
            return None
        if self.seconds is not None:
            left = progress.started + self.seconds - time.monotonic()
            chunk = progress.next_chunk_seconds or 0.0
            if seconds + chunk > left:
                return Stop(
                    "stopped",
                    f"time budget: {max(left, 0):.2f} s left, the pause of {seconds:.2f} s and "
                    f"the next chunk (~{chunk:.2f} s) need more",
                )
        started = time.monotonic()
        interrupt = self._interrupt(progress, urgent)
        interrupted = self.throttle.rest(seconds, interrupt, self.end_read)
        self.pause_seconds += time.monotonic() - started
        return self._interrupted if interrupted else None

    def _wait_for_gates(self, progress: Progress, urgent: list[StopCondition]) -> Stop | None:
        if not self.throttle.gates:
            return None
        if self.seconds is None:
            deadline = time.monotonic() + defaults.THROTTLE_WAIT_SECONDS
        else:
            deadline = progress.started + self.seconds - (progress.next_chunk_seconds or 0)
        interrupt = self._interrupt(progress, urgent)
        waited = self.throttle.wait(
            deadline, limits=self.limits, interrupt=interrupt, before_pause=self.end_read
        )
        self.gate_wait_seconds += waited.seconds
        self.readings = waited.readings
        if waited.interrupted:
            return self._interrupted
        if not waited.throttled:
            return None
        return Stop("stopped", f"throttled: {', '.join(map(str, waited.over))}")

    def _interrupt(self, progress: Progress, urgent: list[StopCondition]) -> Callable[[], bool]:
        """Asked between slices of a pause or a wait: keep the lease, and stop for a signal or
        a hold from outside (other conditions wait for the chunk's turn: the budget's is
        already in the wait's deadline)."""

        def interrupt() -> bool:
            self.keep_lease()
            reason = first_reason(urgent, progress)
            if reason is None:
                self._take(self.read_control(progress))
                self.end_read()
                self._interrupted = self._held()
            else:
                self._interrupted = Stop("stopped", reason)
            return self._interrupted is not None

        return interrupt
