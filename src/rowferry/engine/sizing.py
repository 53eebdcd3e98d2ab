"""Chunk size: fixed, or ``"auto"``: sized from measured chunks to a target duration.

With ``"auto"`` (the default) the first chunk has :data:`~rowferry.defaults.CHUNK_SIZE` root
rows, or, when earlier trips stored a per-row rate, as many as fit the target duration
(:data:`~rowferry.defaults.TARGET_CHUNK_SECONDS`, or the migration's ``chunk_seconds`` setting,
which :meth:`ChunkSizer.retarget` applies as soon as it changes). After
each full chunk the size moves toward ``size * target / measured`` (at most halved or doubled
at a time, between :data:`~rowferry.defaults.MIN_CHUNK_SIZE` and
:data:`~rowferry.defaults.MAX_CHUNK_SIZE`, or :data:`~rowferry.defaults.MAX_PUSHDOWN_CHUNK_SIZE`
for pushed-down chunks, which hold no rows in the client), and never past what the memory
estimate allows:
the Python objects of a chunk's rows with their related rows, measured on a sample of each
chunk, times three (the chunk read ahead, this chunk, its output rows) must stay under
:data:`~rowferry.defaults.CHUNK_MEMORY_BYTES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from rowferry import defaults

ChunkSize: TypeAlias = int | Literal["auto"]

#: chunks in memory at once on the Python path: read ahead, being written, its output rows
_COPIES = 3


def check(chunk_size: ChunkSize) -> None:
    if chunk_size == "auto":
        return
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(
            f"chunk_size must be 'auto' or an integer of at least 1, not {chunk_size!r}"
        )


@dataclass
class ChunkSizer:
    """The size of the next chunk."""

    size: int
    adaptive: bool
    bytes_per_row: float | None = None
    #: the largest size "auto" goes to
    ceiling: int = defaults.MAX_CHUNK_SIZE
    #: the duration "auto" aims each chunk at
    target_seconds: float = defaults.TARGET_CHUNK_SECONDS

    @classmethod
    def for_trip(
        cls,
        chunk_size: ChunkSize,
        seconds_per_row: float | None,
        ceiling: int = defaults.MAX_CHUNK_SIZE,
    ) -> ChunkSizer:
        if chunk_size != "auto":
            return cls(chunk_size, adaptive=False)
        size = defaults.CHUNK_SIZE
        if seconds_per_row:
            size = _clamp(int(defaults.TARGET_CHUNK_SECONDS / seconds_per_row), ceiling)
        return cls(size, adaptive=True, ceiling=ceiling)

    def record(self, rows: int, seconds: float, bytes_per_row: float | None) -> None:
        """Learn from a committed chunk of ``rows`` root rows that took ``seconds``."""
        if bytes_per_row:
            self.bytes_per_row = bytes_per_row
        if not self.adaptive or rows < self.size or seconds <= 0:
            return  # a short chunk is the last one: nothing to learn for the next
        ideal = self.size * self.target_seconds / seconds
        self.size = self._fitted(min(max(ideal, self.size / 2), self.size * 2))

    def retarget(self, seconds: float) -> None:
        """Aim at chunks of ``seconds`` from now on; the size changes at once in proportion."""
        if seconds == self.target_seconds:
            return
        if self.adaptive:
            self.size = self._fitted(self.size * seconds / self.target_seconds)
        self.target_seconds = seconds

    def _fitted(self, ideal: float) -> int:
        """``ideal`` within the memory estimate and the bounds."""
        if self.bytes_per_row:
            ideal = min(ideal, defaults.CHUNK_MEMORY_BYTES / (_COPIES * self.bytes_per_row))
        return _clamp(int(ideal), self.ceiling)


def _clamp(size: int, ceiling: int) -> int:
    return min(max(size, defaults.MIN_CHUNK_SIZE), ceiling)
