"""Checking a migration's target against its source, without trusting the state table.

:func:`verify` walks the source's qualifying keys in key order, ``range_size`` keys at a time
(keyset, never OFFSET). Range *i* covers the key span ``(last key of range i-1, last key of range
i]``; the target rows whose source-key columns fall in that span are compared with it, and the
target rows after the last source key are read at the end, so every target row is looked at once:

- keys: qualifying keys missing from the target (and not quarantined), keys stored more than
  once, keys stored but not qualifying, keys both stored and quarantined;
- plain copies: a checksum of the copied columns per range on each side, and for a range whose
  checksums differ, the keys whose rows differ;
- transform migrations: the transform re-run on an evenly spread sample of the keys (or on all
  of them), each output row compared with the row stored under its key.

Memory is bounded by ``range_size`` and the transform batch (:data:`defaults.CHUNK_SIZE` root
rows), never by the table; counts are ``COUNT(*)`` in SQL. Only the quarantined keys of the
migration are held as one set (the quarantine is meant to stay small).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from rowferry import cursor, defaults
from rowferry.chunks import read as reading
from rowferry.chunks.read import chunk_select, readable
from rowferry.dialects.connect import Bind, connect_both, describe
from rowferry.dialects.driver_errors import boundary
from rowferry.dialects.lookup import dialect_for
from rowferry.engine import gc_tuning
from rowferry.errors import ConfigError
from rowferry.migration import transform as transforming
from rowferry.migration.spec import Migration, Row
from rowferry.schema import resolve
from rowferry.state import quarantine
from rowferry.verify.report import RowMismatch, VerifyReport
from rowferry.verify.values import (
    KeyForm,
    RangeSums,
    Renderer,
    is_json_column,
    key_of,
    keyed_select,
    member,
    rows_difference,
)

Key = cursor.Key
SAMPLE = defaults.VERIFY_SAMPLE
RANGE_SIZE = defaults.VERIFY_RANGE_SIZE


def verify(
    migration: Migration,
    source: Bind,
    target: Bind | None = None,
    *,
    sample: int = SAMPLE,
    all_rows: bool = False,
    range_size: int = RANGE_SIZE,
) -> VerifyReport:
    """Compare the target of ``migration`` with its source (target default: the source).

    Writes nothing and does not read the state table. For a transform migration the transform
    runs again on ``sample`` root rows spread evenly over the keys, or on every qualifying row
    with ``all_rows``. Raises :class:`ConfigError` when the target does not say which columns
    hold the root key, :class:`MigrationFailed` when a statement or the transform fails.
    """
    if range_size < 1:
        raise ValueError("range_size must be at least 1")
    if sample < 0:
        raise ValueError("sample cannot be negative")
    context = f"verify of migration {migration.name!r}"
    with (
        gc_tuning.fewer_collections(),
        connect_both(source, target) as (src, dst),
        boundary(src, dst, context),
    ):
        return _Verifier(migration, src, dst, range_size, (sample, all_rows)).run()


class _Verifier:
    """Walks the source's qualifying keys range by range and checks each range in the target."""

    def __init__(
        self,
        migration: Migration,
        src: sa.Connection,
        dst: sa.Connection,
        range_size: int,
        sample: tuple[int, bool],
    ) -> None:
        self.src, self.dst, self.range_size = src, dst, range_size
        self.src_dialect, self.dst_dialect = dialect_for(src), dialect_for(dst)
        self.source = resolve.resolve_source(src, migration)
        self.key_names = tuple(c.name for c in self.source.key)
        self.target = resolve.resolve_target(dst, migration, self.key_names)
        _require_source_key(migration, self.target)
        resolve.check_copy_columns(self.source, self.target, migration)
        self.holding = tuple(self.target.table.c[n] for n in self.target.source_key)
        self.norm = KeyForm(self.source.key, self.holding)
        stored = quarantine.quarantined_keys(dst, migration.name)
        self.quarantined = {self.norm(k) for k in stored}
        self.report = self._new_report(migration, sample)
        self.copy = Renderer(self.source, self.target) if migration.transform is None else None
        self.transforms = (
            _Transforms(migration, self, *sample) if migration.transform is not None else None
        )

    def _new_report(self, migration: Migration, sample: tuple[int, bool]) -> VerifyReport:
        size, every = sample
        described = "every qualifying row" if every else f"evenly spread sample of up to {size:,}"
        return VerifyReport(
            migration=migration.name,
            source=describe(self.src.engine.url),
            target=describe(self.dst.engine.url),
            source_table=self.source.table.name,
            target_table=self.target.table.name,
            key=list(self.key_names),
            source_key=list(self.target.source_key),
            mode="copy" if migration.transform is None else "transform",
            sample="" if migration.transform is None else described,
            range_size=self.range_size,
        )

    def run(self) -> VerifyReport:
        self.report.qualifying = self._count(self.src, self.source.table, self.source.where)
        self.report.target_rows = self._count(self.dst, self.target.table, None)
        self.report.quarantined = len(self.quarantined)
        after: Key | None = None
        collections = gc_tuning.AfterChunks()
        while True:
            rows = [dict(r._mapping) for r in self.src.execute(self._source_select(after))]
            self._release()
            if not rows:
                break
            keys = [tuple(r[n] for n in self.key_names) for r in rows]
            self._check_range(after, keys, rows)
            self._release()
            collections.collect()
            after = keys[-1]
            if len(rows) < self.range_size:
                break
        for page, _, _ in self._target_pages(after, None):  # target keys after the last one
            self._classify(page, {})
        self._release()
        return self.report

    def _source_select(self, after: Key | None) -> sa.Select[Any]:
        stmt = chunk_select(self.source, after, self.range_size)
        if self.copy is None:
            return stmt.with_only_columns(*self.source.key)
        return stmt.with_only_columns(*[readable(c, self.src_dialect) for c in self.source.table.c])

    def _check_range(self, after: Key | None, keys: list[Key], rows: list[Row]) -> None:
        self.report.ranges += 1
        expected = {self.norm(k): k for k in keys}
        sums = None if self.copy is None else self._range_sums(keys, rows)
        counts: dict[Key, int] = {}
        for page, page_after, page_last in self._target_pages(after, keys[-1]):
            counts.update(self._classify(page, expected))
            if sums is not None:
                sums.add_target(self._target_rows(page_after, page_last))
        self._judge_keys(expected, counts)
        if sums is not None and sums.differ():
            self.report.add_range(sums.mismatch(keys[0], keys[-1]))
        if self.transforms is not None:
            self.transforms.compare_range(keys)

    def _range_sums(self, keys: list[Key], rows: list[Row]) -> RangeSums:
        """The range's checksums over the source rows that should be in the target: a
        quarantined row is not (it is counted, and reported if stored, among the keys)."""
        assert self.copy is not None
        kept = [
            (k, r) for k, r in zip(keys, rows, strict=True) if self.norm(k) not in self.quarantined
        ]
        return RangeSums(self.copy, self.norm, [k for k, _ in kept], [r for _, r in kept])

    def _classify(self, page: list[tuple[Key, int]], expected: dict[Key, Key]) -> dict[Key, int]:
        """Report extra and quarantined keys of a page; return the counts of expected keys."""
        counts: dict[Key, int] = {}
        for key, rows in page:
            normal = self.norm(key)
            if normal in self.quarantined:
                self.report.stored_and_quarantined.add(key)
            if normal in expected:
                counts[normal] = rows
                continue
            self.report.extra.add(key)
            if rows > 1:
                self.report.duplicate.add(key)
        return counts

    def _judge_keys(self, expected: dict[Key, Key], counts: dict[Key, int]) -> None:
        """Missing and duplicate qualifying keys; for a transform, the transform decides how
        many rows a suspect key should have (it may give none, or several)."""
        absent = [n for n in expected if n not in counts and n not in self.quarantined]
        repeated = [n for n, rows in counts.items() if rows > 1]
        wanted = dict.fromkeys(absent + repeated, 1)
        if self.transforms is not None and wanted:
            found = self.transforms.output_counts([expected[n] for n in wanted])
            wanted = {n: found.get(n, 0) for n in wanted}
        for normal in absent:
            if wanted[normal]:
                self.report.missing.add(expected[normal])
        for normal in repeated:
            if counts[normal] > max(wanted[normal], 1):
                self.report.duplicate.add(expected[normal])

    def _target_pages(
        self, after: Key | None, last: Key | None
    ) -> Iterator[tuple[list[tuple[Key, int]], Key | None, Key]]:
        """Source-key values stored in the span ``(after, last]`` (``None``: unbounded) with
        their row counts, ``range_size`` distinct keys per page, with each page's span."""
        rows = sa.func.count().label("rf_rows")
        while True:
            stmt = self._span(sa.select(*self.holding, rows), after, last)
            stmt = stmt.group_by(*self.holding).order_by(*self.holding)
            page = [
                (tuple(r[:-1]), int(r[-1]))
                for r in self.dst.execute(stmt.suffix_with(reading.limit_clause(self.range_size)))
            ]
            if not page:
                return
            yield page, after, page[-1][0]
            full = len(page) == self.range_size
            if not full or (last is not None and self.norm(page[-1][0]) == self.norm(last)):
                return
            after = page[-1][0]

    def _target_rows(self, after: Key | None, last: Key) -> Iterator[tuple[Key, Row]]:
        """The copied columns of the target rows in the span ``(after, last]``."""
        assert self.copy is not None
        columns = [readable(self.target.table.c[n], self.dst_dialect) for n in self.copy.columns]
        stmt = self._span(keyed_select(self.holding, columns), after, last)
        for row in self.dst.execute(stmt):
            yield key_of(row, self.holding), {n: row._mapping[n] for n in self.copy.columns}

    def _span(self, stmt: sa.Select[Any], after: Key | None, last: Key | None) -> sa.Select[Any]:
        if after is not None:
            stmt = stmt.where(cursor.after(self.holding, after))
        if last is not None:
            stmt = stmt.where(cursor.up_to(self.holding, last))
        return stmt

    def _count(
        self, conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool] | None
    ) -> int:
        stmt = sa.select(sa.func.count()).select_from(table)
        if where is not None:
            stmt = stmt.where(where)
        found = int(conn.execute(stmt).scalar_one())
        self._release()
        return found

    def _release(self) -> None:
        """End the read transactions: each range reads fresh, and no snapshot is held long."""
        self.src.rollback()
        if self.dst is not self.src:
            self.dst.rollback()


def _require_source_key(migration: Migration, target: resolve.TargetPlan) -> None:
    if not target.source_key:
        raise ConfigError(
            f"migration {migration.name!r}: verify cannot match the rows of target "
            f"{target.table.name!r} with the rows of {migration.source!r}: declare the target "
            f"column(s) holding the root key, Target({target.table.name!r}, ..., "
            "source_key=[...])"
        )


class _Transforms:
    """Re-runs the transform on the sampled keys, batch by batch, and compares the stored rows."""

    def __init__(self, migration: Migration, verifier: _Verifier, size: int, every: bool) -> None:
        self.migration, self.reader = reading.for_migration(
            migration, verifier.source, dialect_for(verifier.src), pack=False
        )
        self.v = verifier
        self.size, self.every = size, every
        self.json_columns = {c.name for c in verifier.target.table.c if is_json_column(c)}
        self.position = 0

    def compare_range(self, keys: list[Key]) -> None:
        total = self.v.report.qualifying
        start = self.position
        picked = [k for i, k in enumerate(keys, start) if self._picked(i, total)]
        self.position += len(keys)
        for first in range(0, len(picked), defaults.CHUNK_SIZE):
            self._compare(picked[first : first + defaults.CHUNK_SIZE])

    def _picked(self, position: int, total: int) -> bool:
        """Whether the key at ``position`` (in key order) is in the sample: the positions
        ``j * total // size`` for ``j < size``, spread evenly over the key space."""
        if self.every or self.size >= total:
            return self.every or self.size > 0
        j = -(-position * self.size // total)
        return j < self.size and j * total // self.size == position

    def output_counts(self, keys: list[Key]) -> dict[Key, int]:
        """How many target rows each key that still qualifies should have (a row whose
        transform fails should have one: it is neither migrated nor quarantined)."""
        found: dict[Key, int] = {}
        for first in range(0, len(keys), defaults.CHUNK_SIZE):
            result = self._apply(keys[first : first + defaults.CHUNK_SIZE])
            found.update((self.v.norm(g.key), len(g.outputs)) for g in result.groups)
            found.update((self.v.norm(f.key), 1) for f in result.failures)
        return found

    def _apply(self, keys: list[Key]) -> transforming.Transformed:
        """The transform run on the root rows of ``keys`` that still qualify, read like a
        chunk: one root query, one query per relation."""
        chunk = self.reader.read_keys(self.v.src, keys)
        return transforming.apply(self.migration, self.v.key_names, chunk.rows, chunk.related)

    def _stored(self, keys: list[Key]) -> dict[Key, list[Row]]:
        """The stored rows of ``keys``, every column (JSON columns as text)."""
        columns = self.v.target.table.c
        stmt = keyed_select(self.v.holding, [readable(c, self.v.dst_dialect) for c in columns])
        found: dict[Key, list[Row]] = defaultdict(list)
        for row in self.v.dst.execute(stmt.where(member(self.v.holding, keys))):
            stored = {c.name: row._mapping[c.name] for c in columns}
            found[self.v.norm(key_of(row, self.v.holding))].append(stored)
        return found

    def _compare(self, keys: list[Key]) -> None:
        result = self._apply(keys)
        columns = transforming.output_columns(result.outputs)
        resolve.check_output_columns(self.v.target, columns, self.migration)
        stored = self._stored(keys)
        report = self.v.report
        for failure in result.failures:
            report.rows_compared += 1
            if self.v.norm(failure.key) not in self.v.quarantined:
                report.add_row(RowMismatch(failure.key, f"not quarantined, and {failure.reason}"))
        for group in result.groups:
            report.rows_compared += 1
            rows = stored.get(self.v.norm(group.key))
            if rows:  # keys with no stored row are the key check's business
                problem = rows_difference(group.outputs, rows, self.json_columns)
                if problem is not None:
                    report.add_row(RowMismatch(group.key, problem))
