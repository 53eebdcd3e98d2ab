"""Reading one chunk: a keyset slice of the root table, then one query per relation.

Root rows: ``SELECT cols FROM root WHERE <filter> AND key > :cursor ORDER BY key LIMIT :n``.
Related rows: ``SELECT cols FROM child WHERE fk IN (:keys of this chunk) ORDER BY fk, ...``, once
per relation per chunk whatever the number of rows (split only past the dialect's parameter cap).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import sqlalchemy as sa

from rowferry import cursor
from rowferry.chunks import packed
from rowferry.dialects.base import Dialect
from rowferry.migration import shapes
from rowferry.migration import transform as transforming
from rowferry.migration.spec import Migration, Related, Row
from rowferry.schema.resolve import RelationPlan, SourcePlan

log = logging.getLogger("rowferry")


@dataclass
class Chunk:
    """Root rows of one chunk with their related rows, and the key of the last root row."""

    rows: list[Row]
    related: list[Related]
    last_key: cursor.Key | None


def chunk_select(
    plan: SourcePlan,
    after: cursor.Key | None,
    limit: int,
    columns: Sequence[sa.ColumnElement[Any]] | None = None,
) -> sa.Select[Any]:
    """The root query of a chunk that starts after ``after`` (every column, or ``columns``)."""
    stmt = sa.select(*(plan.table.c if columns is None else columns))
    if plan.where is not None:
        stmt = stmt.where(plan.where)
    if after is not None:
        stmt = stmt.where(cursor.after(plan.key, after))
    return stmt.order_by(*plan.key).suffix_with(limit_clause(limit))


def limit_clause(rows: int) -> sa.TextClause:
    """``LIMIT :rf_limit``, a suffix (SQLAlchemy's ``.limit()`` adds ``OFFSET 0`` on SQLite, and
    rowferry never sends OFFSET) with the size as a bound parameter: "auto" changes the size at
    nearly every chunk, and a size written into the text would make each chunk a statement of
    its own, compiled anew and never prepared by the driver."""
    return sa.text("LIMIT :rf_limit").bindparams(
        sa.bindparam("rf_limit", int(rows), type_=sa.Integer)
    )


def keys_select(
    plan: SourcePlan,
    keys: Sequence[cursor.Key],
    columns: Sequence[sa.ColumnElement[Any]] | None = None,
) -> sa.Select[Any]:
    """The root rows with these keys that still pass the filter, in key order."""
    stmt = sa.select(*(plan.table.c if columns is None else columns))
    if plan.where is not None:
        stmt = stmt.where(plan.where)
    if len(plan.key) == 1:
        stmt = stmt.where(plan.key[0].in_([k[0] for k in keys]))
    else:
        stmt = stmt.where(sa.tuple_(*plan.key).in_(list(keys)))
    return stmt.order_by(*plan.key)


def relation_select(
    rel: RelationPlan, keys: Sequence[tuple[Any, ...]], dialect: Dialect | None = None
) -> sa.Select[Any]:
    """The query that loads ``rel`` for the parents whose lookup keys are ``keys``."""
    cols = [rel.table.c[c] for c in rel.child_columns]
    stmt = sa.select(*rel.table.c).where(lookup_match(rel, keys, dialect))
    # Ordering by the lookup columns first lets the index on them deliver the rows in order
    # (no filesort, no full index scan); rows are grouped per parent anyway.
    return stmt.order_by(*cols, *rel.order_by)


def lookup_match(
    rel: RelationPlan, keys: Sequence[tuple[Any, ...]], dialect: Dialect | None = None
) -> sa.ColumnElement[bool]:
    """The child rows of ``rel`` whose lookup columns hold one of ``keys``."""
    cols = [rel.table.c[c] for c in rel.child_columns]
    if len(cols) == 1:
        values = [k[0] for k in keys]
        return dialect.in_list(cols[0], values) if dialect else cols[0].in_(values)
    return sa.tuple_(*cols).in_(list(keys))


def readable(column: sa.Column[Any], dialect: Dialect) -> sa.ColumnElement[Any]:
    """A JSON column as its text (:meth:`Dialect.json_text`); any other column as it is."""
    if not isinstance(column.type, sa.JSON):
        return column
    return dialect.json_text(column).label(column.name)


def _as_dicts(result: sa.CursorResult[Any]) -> list[Row]:
    """The result's rows as dicts (built by ``map``, a third cheaper than a comprehension;
    from ``fetchall``, which takes the driver's rows at once, where iterating fetches each)."""
    return list(map(dict, map(zip, repeat(tuple(result.keys())), result.fetchall())))


class ChunkReader:
    """Reads chunks of a source plan from one connection.

    ``pack``: read related rows packed as JSON where the server can (:mod:`rowferry.chunks.packed`);
    verify reads them with the plain queries, so that it does not share the packed path.

    ``json_as_text``: read the root's JSON columns as their text (``CAST(col AS TEXT)``), for
    migrations whose shape writes them unchanged (see
    :func:`rowferry.migration.shapes.reads_json_as_text`). Parsed, a JSON ``null`` would be
    indistinguishable from SQL NULL, and a bare JSON string from JSON text.
    """

    def __init__(
        self, plan: SourcePlan, dialect: Dialect, *, pack: bool = True, json_as_text: bool = False
    ) -> None:
        self.plan = plan
        self.dialect = dialect
        self.columns: list[sa.ColumnElement[Any]] = [
            readable(c, dialect) if json_as_text else c for c in plan.table.c
        ]
        self.key_names = tuple(c.name for c in plan.key)
        self.pack = pack and dialect.packs_relations()
        self._packings: dict[int, packed.Packing | None] = {}

    def packing(self, rel: RelationPlan) -> packed.Packing | None:
        """How ``rel`` is read packed, or ``None``: with the plain query."""
        if not self.pack:
            return None
        if id(rel) not in self._packings:
            self._packings[id(rel)] = packed.packing(rel, self.dialect.sa_dialect)
        return self._packings[id(rel)]

    def read(self, conn: sa.Connection, after: cursor.Key | None, limit: int) -> Chunk:
        """The next chunk: at most ``limit`` root rows after ``after``, with their relations."""
        return self._load(conn, chunk_select(self.plan, after, limit, self.columns))

    def read_keys(self, conn: sa.Connection, keys: Sequence[cursor.Key]) -> Chunk:
        """The root rows with these keys (those that still exist and qualify), with relations."""
        return self._load(conn, keys_select(self.plan, keys, self.columns))

    def _load(self, conn: sa.Connection, stmt: sa.Select[Any]) -> Chunk:
        rows = _as_dicts(conn.execute(stmt))
        if not rows:
            return Chunk([], [], None)
        loader = _RelationLoader(conn, self.dialect, self.packing)
        related = loader.load(self.plan.relations, rows)
        last = tuple(rows[-1][k] for k in self.key_names)
        return Chunk(rows, related, last)


def for_migration(
    migration: Migration, plan: SourcePlan, dialect: Dialect, *, pack: bool = True
) -> tuple[Migration, ChunkReader]:
    """The migration as it runs on ``plan``'s table (:func:`rowferry.migration.shapes.bind`) and the
    reader of the rows it takes: the two agree on whether JSON columns arrive as text."""
    as_text = shapes.reads_json_as_text(migration.transform)
    reader = ChunkReader(plan, dialect, pack=pack, json_as_text=as_text)
    return shapes.bind(migration, plan.table), reader


class _RelationLoader:
    def __init__(
        self,
        conn: sa.Connection,
        dialect: Dialect,
        packing: Callable[[RelationPlan], packed.Packing | None],
    ) -> None:
        self.conn = conn
        self.dialect = dialect
        self.packing = packing

    def load(self, relations: Sequence[RelationPlan], parents: list[Row]) -> list[Related]:
        """For each parent, a dict ``{relation name: row, None or list of rows}``."""
        related: list[Related] = [{} for _ in parents]
        for rel in relations:
            groups = self._fetch(rel, parents)
            lookups = transforming.keys(parents, rel.parent_columns)
            for slot, lookup in zip(related, lookups, strict=True):
                found = groups.get(lookup, [])
                slot[rel.name] = found if rel.many else (found[0] if found else None)
        return related

    def _fetch(self, rel: RelationPlan, parents: list[Row]) -> dict[tuple[Any, ...], list[Row]]:
        lookups = transforming.keys(parents, rel.parent_columns)
        wanted = [k for k in dict.fromkeys(lookups) if None not in k]
        step = max(1, self.dialect.max_params // len(rel.child_columns))
        rows: list[Row] = []
        for start in range(0, len(wanted), step):
            rows.extend(self._rows(rel, wanted[start : start + step]))
        if rel.children:
            for row, nested in zip(rows, self.load(rel.children, rows), strict=True):
                row.update(nested)
        groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
        for row, lookup in zip(rows, transforming.keys(rows, rel.child_columns), strict=True):
            groups[lookup].append(row)
        return groups

    def _rows(self, rel: RelationPlan, keys: Sequence[tuple[Any, ...]]) -> list[Row]:
        packing = self.packing(rel)
        if packing is not None:
            try:
                return packing.fetch(self.conn, keys)
            except packed.Incomplete as exc:
                log.warning("%s; reading them with the plain query", exc)
        return _as_dicts(self.conn.execute(relation_select(rel, keys, self.dialect)))
