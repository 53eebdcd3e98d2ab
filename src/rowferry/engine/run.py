"""The one entry point: :func:`run` opens the connections and runs one :class:`Trip`.

The CLI, the demo and the tests are thin adapters over it. Each chunk's writes and its
checkpoint commit in one transaction on the target, so a trip can be killed at any instant and
the next one resumes exactly after the last committed chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rowferry.dialects.connect import Bind, connect_both
from rowferry.engine import gc_tuning, sizing
from rowferry.engine.assembly import assemble
from rowferry.engine.budget import Budget
from rowferry.engine.results import ChunkDone, RunResult
from rowferry.engine.sizing import ChunkSize
from rowferry.engine.stops import StopCondition
from rowferry.engine.trip import Trip
from rowferry.migration.spec import Migration

__all__ = ["Bind", "Budget", "ChunkDone", "RunResult", "run"]


def run(
    migration: Migration,
    source: Bind,
    target: Bind | None = None,
    *,
    budget: Budget | None = None,
    chunk_size: ChunkSize = "auto",
    stop_when: Sequence[StopCondition] = (),
    on_chunk: Callable[[ChunkDone], None] | None = None,
) -> RunResult:
    """Run one trip of ``migration`` from ``source`` to ``target`` (default: the source).

    ``chunk_size``: root rows per chunk, or ``"auto"`` (sized from measured chunks to about
    half a second each; see :mod:`rowferry.engine.sizing`).

    Returns when the migration is done, a stop condition (the budget, ``stop_when``) says
    stop, or the migration is paused or cancelled from outside (:mod:`rowferry.state.control`).
    Raises :class:`RowferryError` subclasses on failure, after recording the error in the
    state row when that was possible; a throttle's gate that cannot be read is refused before
    anything is written.
    """
    sizing.check(chunk_size)
    started = time.monotonic()
    budget = budget or Budget()
    with gc_tuning.fewer_collections(), connect_both(source, target) as (src, dst):
        if budget.throttle is not None:
            budget.throttle.probe()
        trip = Trip(migration, src, dst, assemble(migration, src, dst), chunk_size, budget)
        return trip.execute([*budget.conditions(), *stop_when], started, on_chunk)
