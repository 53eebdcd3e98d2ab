"""Where a trip's parts are put together: the real tables, the dialects, the error boundary and
the way each chunk is done (see :mod:`rowferry.chunks.contract`).

Every check that can refuse a migration runs here, before the trip takes its lease or writes
anything: the tables and columns, the values the target cannot hold, the shape's columns, and
pushdown's conditions.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

import sqlalchemy as sa

from rowferry.chunks import pushdown
from rowferry.chunks import read as reading
from rowferry.chunks.contract import Chunks
from rowferry.chunks.prefetch import Prefetcher
from rowferry.chunks.python_path import PythonWay
from rowferry.chunks.write import Writer
from rowferry.dialects import fidelity
from rowferry.dialects.driver_errors import DriverErrors
from rowferry.dialects.lookup import dialect_for
from rowferry.errors import ConfigError
from rowferry.migration.spec import Migration
from rowferry.schema import resolve
from rowferry.schema.resolve import SourcePlan, TargetPlan


@dataclass
class Parts:
    """What one trip of one migration works with."""

    source: SourcePlan
    target: TargetPlan
    errors: DriverErrors
    chunks: Chunks
    #: the Python path's read-ahead, if it has one (closed with the trip)
    prefetch: Prefetcher | None

    def close(self) -> None:
        if self.prefetch is not None:
            with suppress(Exception):
                self.prefetch.close()


def assemble(migration: Migration, src: sa.Connection, dst: sa.Connection) -> Parts:
    """Check ``migration`` against the real tables and build the parts of its trip."""
    source, target = resolve.resolve(src, dst, migration)
    resolve.check_copy_columns(source, target, migration)
    dialects = (dialect_for(src), dialect_for(dst))
    errors = DriverErrors(*dialects)
    fidelity.check(migration, source.table, target.table, dialects[1])
    bound, reader = reading.for_migration(migration, source, dialects[0])
    writer = Writer(target, dialects[1])
    pushdown.check_shape(migration, source, target)
    if migration.pushdown:
        python = PythonWay(bound, src, dst, reader, writer, errors.is_transient)
        why = pushdown.reasons(migration, source, src, dst, dialects[1])
        if why:
            raise ConfigError(
                f"migration {migration.name!r} asks for pushdown, but " + "; ".join(why)
            )
        statements = pushdown.ChunkStatements(migration, source, target, dialects[1])
        way = pushdown.PushdownWay(statements, dst, errors.is_transient)
        fallback = Chunks(python, migration.name)
        return Parts(source, target, errors, Chunks(way, migration.name, fallback), None)
    prefetch = Prefetcher(reader, src.engine) if dialects[0].prefetches else None
    python = PythonWay(bound, src, dst, reader, writer, errors.is_transient, prefetch)
    return Parts(source, target, errors, Chunks(python, migration.name), prefetch)
