"""When a trip stops: small callables the loop asks between chunks.

Each condition gets the trip's :class:`Progress` and returns a reason to stop, or ``None``. The
deadline condition refuses to start a chunk predicted (from the chunks measured so far) not to
finish in time, so a trip ends by itself instead of being killed by its platform.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from rowferry import defaults


@dataclass
class Progress:
    """What a trip has done so far, and what the next chunk is expected to cost."""

    started: float
    chunks: int = 0
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    retries: int = 0
    next_chunk_seconds: float | None = None

    @property
    def rows(self) -> int:
        """The earlier name of :attr:`rows_read`, kept for stop conditions that use it."""
        return self.rows_read


class StopCondition(Protocol):
    def __call__(self, progress: Progress) -> str | None: ...


@dataclass
class ChunkTimer:
    """Predicts the next chunk's duration from the durations measured so far.

    The prediction is the slowest per-row rate of the last few chunks, times the next chunk's
    size (``chunk_size``, which an adaptive trip changes), times a safety factor; before any
    chunk of this trip is measured it falls back on the per-row rate stored by earlier trips.
    """

    chunk_size: int
    seconds_per_row: float | None = None
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=defaults.TIMER_WINDOW))

    def record(self, seconds: float, rows: int) -> None:
        if rows:
            rate = seconds / rows
            self.recent.append(rate)
            old = self.seconds_per_row
            self.seconds_per_row = rate if old is None else 0.7 * old + 0.3 * rate

    def predict(self) -> float | None:
        rate = self._rate()
        if rate is None:
            return None
        return rate * self.chunk_size * defaults.CHUNK_SAFETY_FACTOR

    def rows_within(self, seconds: float) -> int | None:
        """How many rows are predicted to fit in ``seconds`` (``None``: nothing measured yet)."""
        rate = self._rate()
        if not rate:
            return None
        return max(int(seconds / (rate * defaults.CHUNK_SAFETY_FACTOR)), 0)

    def _rate(self) -> float | None:
        return max(self.recent) if self.recent else self.seconds_per_row


class Deadline:
    """Stop before a chunk that would not finish by ``started + seconds``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock

    def __call__(self, progress: Progress) -> str | None:
        left = progress.started + self.seconds - self.clock()
        need = progress.next_chunk_seconds or 0.0
        if left <= 0 or need > left:
            return f"time budget: {max(left, 0):.2f} s left, next chunk needs ~{need:.2f} s"
        return None


class MaxChunks:
    """Stop after ``limit`` chunks in this trip."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, progress: Progress) -> str | None:
        if progress.chunks < self.limit:
            return None
        return f"chunk limit: {self.limit} chunk{'' if self.limit == 1 else 's'} done"


class SignalStop:
    """A first SIGTERM or SIGINT asks for a warm stop after the current chunk; a second one
    raises ``KeyboardInterrupt`` at once (the open chunk is rolled back, nothing is lost)."""

    def __init__(self) -> None:
        self.received: str | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            raise KeyboardInterrupt(f"stopped at once by a second signal ({name})")
        self.received = name

    def __call__(self, progress: Progress) -> str | None:
        return f"signal: {self.received} received" if self.received else None

    @contextmanager
    def installed(self) -> Iterator[SignalStop]:
        """Handle SIGTERM and SIGINT while the block runs (main thread only)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def first_reason(conditions: list[StopCondition], progress: Progress) -> str | None:
    for condition in conditions:
        reason = condition(progress)
        if reason is not None:
            return reason
    return None
