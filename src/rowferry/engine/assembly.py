"""Where a trip's parts are put together: the real tables, the dialects, the error boundary and
the way each chunk is done (see :mod:`rowferry.chunks.contract`).

Every check that can refuse a migration runs here, before the trip takes its lease or writes
anything: the tables and columns, the values the target cannot hold, the shape's columns, and
pushdown's conditions.
"""

from __future__ import annotations

import datetime as dt
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Protocol

import sqlalchemy as sa

from rowferry.chunks import pushdown
from rowferry.chunks import read as reading
from rowferry.chunks.contract import Chunks
from rowferry.chunks.prefetch import Prefetcher
from rowferry.chunks.python_path import PythonWay
from rowferry.chunks.sweep import SweepWay
from rowferry.chunks.write import Writer
from rowferry.dialects import exact_types, fidelity
from rowferry.dialects.base import Dialect
from rowferry.dialects.driver_errors import DriverErrors
from rowferry.dialects.lookup import dialect_for
from rowferry.engine import follow
from rowferry.engine.follow import Position
from rowferry.errors import ConfigError, SchemaError
from rowferry.migration.follow import Follow, Sweep
from rowferry.migration.spec import Migration
from rowferry.schema import resolve
from rowferry.schema.resolve import SourcePlan, TargetPlan


class FollowChunks(Protocol):
    """Builds the chunks of a followed migration's changes for one trip: from its position,
    up to the watermark (a sweep has none)."""

    def __call__(self, position: Position, watermark: dt.datetime | None) -> Chunks: ...


@dataclass
class Parts:
    """What one trip of one migration works with."""

    source: SourcePlan
    target: TargetPlan
    errors: DriverErrors
    chunks: Chunks
    #: the Python path's read-ahead, if it has one (closed with the trip)
    prefetch: Prefetcher | None
    #: the source's dialect (its clock, for a followed migration)
    source_dialect: Dialect
    #: a followed migration's chunks after its backlog
    follow_chunks: FollowChunks | None = None

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
        chunks = Chunks(way, migration.name, Chunks(python, migration.name))
        return Parts(source, target, errors, chunks, None, dialects[0])
    prefetch = Prefetcher(reader, src.engine) if dialects[0].prefetches else None
    python = PythonWay(bound, src, dst, reader, writer, errors.is_transient, prefetch)
    if migration.follow is None:
        return Parts(source, target, errors, Chunks(python, migration.name), prefetch, dialects[0])
    chunks = Chunks(python, migration.name, checkpoint=follow.backlog_checkpoint)
    follow_chunks = _follow_chunks(migration, migration.follow, python, source, target, dialects)
    return Parts(source, target, errors, chunks, prefetch, dialects[0], follow_chunks)


def _follow_chunks(
    migration: Migration,
    how: Follow,
    python: PythonWay,
    source: SourcePlan,
    target: TargetPlan,
    dialects: tuple[Dialect, Dialect],
) -> FollowChunks:
    """Check what following needs (before any write) and build the changes' chunks."""
    role = f"migration {migration.name!r}"
    if isinstance(how, Sweep):
        if not target.source_key:
            raise ConfigError(
                f"{role} sweeps for missing rows, so it must know which target columns hold "
                "the source's key: give Target(source_key=[...])"
            )
        sweep = SweepWay(python, source, target, dialects[1], how.keys)
        chunks = Chunks(sweep, migration.name, checkpoint=follow.changes_checkpoint)
        return lambda position, watermark: chunks
    column = source.table.c.get(how.column)
    if column is None or not isinstance(exact_types.declared(column.type), sa.DateTime):
        found = "no such column" if column is None else f"type {column.type}"
        raise SchemaError(
            f"{role} follows changes in {migration.source}.{how.column} ({found}): name a "
            "date-time column that the application sets on every change"
        )
    key_names = [c.name for c in source.key]

    def changes(position: Position, watermark: dt.datetime | None) -> Chunks:
        assert watermark is not None, "changes are read up to a watermark"
        zone = getattr(column.type, "timezone", False)
        bounds = [column <= _zoned(watermark, zone)]
        if position.after is None and position.since is not None:
            bounds.append(column >= _zoned(position.since, zone))
        where = sa.and_(*bounds) if source.where is None else sa.and_(source.where, *bounds)
        plan = replace(source, key=(column, *source.key), where=where)
        bound, reader = reading.for_migration(migration, plan, dialects[0])
        way = PythonWay(
            bound,
            python.src,
            python.dst,
            reader,
            python.writer,
            python.is_transient,
            key_names=key_names,
        )
        return Chunks(way, migration.name, checkpoint=follow.changes_checkpoint)

    return changes


def _zoned(moment: dt.datetime, zone: bool) -> dt.datetime:
    """A UTC time as a column with a time zone compares it (aware), else as it is."""
    return moment.replace(tzinfo=dt.UTC) if zone else moment
