"""Fewer runs of Python's cyclic garbage collector while rows stream through.

CPython starts a young-generation collection every 700 new container objects, and after ten of
those a middle one, and after ten of those a full one that visits every live object. A chunk
makes hundreds of thousands of containers (a dict per row, lists of related rows, key tuples)
and keeps them alive until it commits, so they are promoted and visited again and again, a
large share of a trip's time, showing up as slow lines wherever rows are made. Rows hold no
reference cycles, so reference counting frees them anyway; the collector only has to find the
rare cycle of the libraries' own objects.

:func:`fewer_collections` raises the young threshold to :data:`defaults.GC_YOUNG_THRESHOLD` for
the duration of a trip or a verify, and puts the previous settings back afterwards. It never
lowers a threshold the application set higher, and leaves a disabled collector disabled.

The threshold counts containers made minus containers freed, so a transform that leaves
garbage in cycles (an object pointing back at its parent) would now keep up to 100,000 of
them before a collection. :class:`AfterChunks` bounds that to one chunk's worth: the trip calls
it after each committed chunk, and a young collection then visits only what was made since the
last one. Now and then it runs a full collection instead: the little cyclic garbage that
reaches the oldest generation (the libraries' own) otherwise waits for CPython's rare full
collections and holds pages of memory meanwhile. A full collection runs after at least
:data:`defaults.GC_FULL_EVERY_CHUNKS` chunks, and only once the time since the last one is long
enough for it to cost at most :data:`defaults.GC_FULL_MAX_SHARE` of the time: it visits the whole
heap of the libraries (tens of milliseconds), however little the chunks made.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rowferry import defaults


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's young threshold while the block runs (process-wide)."""
    before = gc.get_threshold()
    young, *older = before
    gc.set_threshold(max(young, defaults.GC_YOUNG_THRESHOLD), *older)
    try:
        yield
    finally:
        gc.set_threshold(*before)


class AfterChunks:
    """The collections after the chunks of one trip or verify (see the module's docstring)."""

    def __init__(self) -> None:
        self._chunks = 0  # since the last full collection
        self._last_full = time.monotonic()
        self._full_seconds = 0.0  # what the last full collection took

    def collect(self) -> None:
        """After a chunk: a young collection of the cycles it left, or now and then a full one."""
        if not gc.isenabled():
            return
        self._chunks += 1
        started = time.monotonic()
        spaced = started - self._last_full >= self._full_seconds / defaults.GC_FULL_MAX_SHARE
        if self._chunks < defaults.GC_FULL_EVERY_CHUNKS or not spaced:
            gc.collect(0)
            return
        gc.collect(2)
        self._last_full = time.monotonic()
        self._full_seconds = self._last_full - started
        self._chunks = 0
