"""A sweep's way of doing a chunk: the next range of source keys, and among them the qualifying
rows the target lacks, written as the Python path writes them (see
:class:`rowferry.migration.follow.Sweep`).

One chunk examines ``limit`` keys after the sweep's cursor. When source and target share a
database, one statement reads the keys with, for each, whether the target holds it (an
anti-join, ``EXISTS`` on the target's columns that hold the source key, which its unique index
answers); otherwise the target is asked for the keys of the range it holds, in one query per
parameter cap. The rows it lacks are then read with their related rows and written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from rowferry import cursor
from rowferry.chunks.contract import Slice, Written
from rowferry.chunks.python_path import PythonWay
from rowferry.chunks.read import Chunk, chunk_select
from rowferry.dialects.base import Dialect
from rowferry.schema.resolve import SourcePlan, TargetPlan


class SweepWay:
    """Finds and writes, range by range, the qualifying source rows missing from the target."""

    def __init__(
        self,
        python: PythonWay,
        source: SourcePlan,
        target: TargetPlan,
        dialect: Dialect,
        keys: int,
    ) -> None:
        self.python = python
        self.src, self.dst = python.src, python.dst
        self.source, self.target = source, target
        self.dialect = dialect
        self.keys = keys
        self.held = [target.table.c[c] for c in target.source_key]

    @property
    def ceiling(self) -> int:
        """Keys examined by one chunk."""
        return self.keys

    def read(self, after: cursor.Key | None, limit: int, next_limit: int) -> Slice | None:
        if self.src is self.dst:
            examined, missing = self._anti_join(after, limit)
        else:
            examined = [tuple(r) for r in self.src.execute(self._keys(after, limit))]
            missing = self._missing(examined)
        chunk = self.python.reader.read_keys(self.src, missing) if missing else None
        if self.src is not self.dst:
            self.src.rollback()
        if not examined:
            return None
        return Slice(len(examined), examined[-1], chunk or Chunk([], [], None))

    def write(self, piece: Slice, fence: Callable[[], None]) -> Written:
        return self.python.write(piece, fence)

    def _keys(self, after: cursor.Key | None, limit: int, *extra: Any) -> sa.Select[Any]:
        return chunk_select(self.source, after, limit, columns=[*self.source.key, *extra])

    def _anti_join(
        self, after: cursor.Key | None, limit: int
    ) -> tuple[list[cursor.Key], list[cursor.Key]]:
        match = [held == key for held, key in zip(self.held, self.source.key, strict=True)]
        present = sa.exists().where(*match).label("rf_present")
        rows = self.src.execute(self._keys(after, limit, present)).all()
        examined = [tuple(row[:-1]) for row in rows]
        return examined, [key for key, row in zip(examined, rows, strict=True) if not row[-1]]

    def _missing(self, examined: Sequence[cursor.Key]) -> list[cursor.Key]:
        """The keys of ``examined`` that no target row holds (the target's own query)."""
        held: set[cursor.Key] = set()
        step = max(1, self.dialect.max_params // len(self.held))
        for start in range(0, len(examined), step):
            part = list(examined[start : start + step])
            if len(self.held) == 1:
                where = self.dialect.in_list(self.held[0], [k[0] for k in part])
            else:
                where = sa.tuple_(*self.held).in_(part)
            held.update(tuple(row) for row in self.dst.execute(sa.select(*self.held).where(where)))
        return [key for key in examined if key not in held]
