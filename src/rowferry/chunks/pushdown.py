"""Pushdown: the database builds each chunk's output rows itself, with ``INSERT ... SELECT``.

Per chunk, on the one connection (source and target are the same database):

1. ``SELECT COUNT(*), MIN(key), MAX(key) FROM (SELECT key FROM root WHERE <filter> AND
   key > :cursor ORDER BY key LIMIT :n) AS chunk``: where the chunk starts and ends, and no
   other key travels (with a composite key, the inner query's keys travel);
2. ``INSERT INTO target (...) SELECT <columns, document> FROM root WHERE key >= :first AND
   key <= :last AND <filter>`` with the conflict policy's clause (the same statement for every
   chunk, so it is compiled once, and an index range of the root's key for the first chunk
   too); the document is built by :mod:`rowferry.dialects.sql_documents` with one correlated
   subquery per relation, so the statement is driven from the root's key range on every
   database;
3. the checkpoint (compare-and-set), then COMMIT, as on the Python path.

On MySQL/MariaDB each chunk's transaction is READ COMMITTED (``SET TRANSACTION``, for that
transaction only). Under REPEATABLE READ, InnoDB's ``INSERT ... SELECT`` sets shared next-key
locks on every source row it reads (the root rows and their related rows, with the gaps
between them) until the chunk commits: a writer of those rows, or of a new related row in such
a gap, would wait for the chunk. Under READ COMMITTED it reads the source as a consistent read,
with no locks, as the Python path's plain ``SELECT`` statements do. InnoDB refuses that under
statement-based binary logging (``log_bin`` on with ``binlog_format=STATEMENT``: error 1665),
so there the chunks keep the session's level and its locks.

On PostgreSQL JIT compilation is off for each chunk's transaction (``set_config('jit', 'off',
true)`` in the statement of step 1: ``SET LOCAL jit = off`` without a round trip of its own). A
chunk's INSERT is planned anew each time, and once a chunk is large enough for its estimated
cost to pass ``jit_above_cost`` (about 4,000 reference orders), the server compiles it to
machine code first: tens of milliseconds per chunk, more than the compiled code saves in a
chunk of half a second. The setting
ends with the transaction, so the connection goes back to the pool with the server's own.

If the database rejects the INSERT (a duplicate under ``on_conflict="error"``, a value too long
for a column ...), the chunk is rolled back and processed again on the Python path, which finds
the rejected rows by bisection and quarantines them: the same outcome, row for row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import sqlalchemy as sa

from rowferry import cursor, defaults
from rowferry.chunks.contract import Slice, Written
from rowferry.chunks.read import chunk_select
from rowferry.dialects.base import Dialect
from rowferry.errors import ConfigError, SchemaError
from rowferry.migration.shapes import Copy, Snapshot
from rowferry.migration.spec import Migration
from rowferry.schema.resolve import RelationPlan, SourcePlan, TargetPlan


def check_shape(migration: Migration, source: SourcePlan, target: TargetPlan) -> None:
    """A declarative transform must name columns that exist (checked before any write)."""
    shape = migration.transform
    if not isinstance(shape, Copy | Snapshot):
        return
    role = f"migration {migration.name!r}"
    missing = [c for c in shape.columns.values() if c not in source.table.c]
    if missing:
        raise SchemaError(f"{role}: source {source.table.name!r} has no column(s) {missing}")
    wanted = [*shape.columns, *([shape.document] if isinstance(shape, Snapshot) else [])]
    unknown = [c for c in wanted if c not in target.table.c]
    if unknown:
        raise SchemaError(f"{role}: target {target.table.name!r} has no column(s) {unknown}")
    if isinstance(shape, Copy) and source.relations:
        raise ConfigError(f"{role}: Copy(...) does not use relations; remove them or use Snapshot")
    if isinstance(shape, Snapshot):
        clash = [r.name for r in source.relations if r.name in source.table.c]
        if clash:
            raise ConfigError(
                f"{role}: relation(s) {clash} have the name of a column of {migration.source!r}; "
                "rename the relation"
            )


def reasons(
    migration: Migration,
    source: SourcePlan,
    src: sa.Connection,
    dst: sa.Connection,
    dialect: Dialect,
) -> list[str]:
    """Why this migration cannot run pushed down; empty when it can."""
    found = []
    shape = migration.transform
    if shape is not None and not isinstance(shape, Copy | Snapshot):
        found.append(
            "its transform is a Python function (describe the output with rowferry.Snapshot(...) "
            "or rowferry.Copy(...) to let the database build it)"
        )
    if src is not dst:
        found.append("source and target are different databases")
    if isinstance(shape, Snapshot):
        columns = [*source.table.c, *_relation_columns(source.relations)]
        bad = dialect.sql_documents().unsupported(columns)
        if bad:
            found.append(f"these columns cannot be rendered in SQL exactly: {', '.join(bad)}")
    return found


def _relation_columns(relations: tuple[RelationPlan, ...]) -> list[sa.Column[Any]]:
    found: list[sa.Column[Any]] = []
    for rel in relations:
        found += [*rel.table.c, *_relation_columns(rel.children)]
    return found


class Bounds(NamedTuple):
    """A chunk: how many root rows, its first and last keys (None when no rows are left)."""

    rows: int
    first: cursor.Key | None
    last: cursor.Key | None


class ChunkStatements:
    """The two statements of a pushed-down chunk, for one migration on one dialect."""

    #: the alias of the chunk's keys in :meth:`end`
    CHUNK_ALIAS = "chunk"
    #: the subqueries of these statements (an EXPLAIN may show them read whole: they are small)
    derived = frozenset({CHUNK_ALIAS})

    def __init__(
        self, migration: Migration, source: SourcePlan, target: TargetPlan, dialect: Dialect
    ):
        self.migration = migration
        self.source, self.target = source, target
        self.dialect = dialect
        self.columns, self.values = self._outputs()

    def _outputs(self) -> tuple[list[str], list[sa.ColumnElement[Any]]]:
        root = self.source.table
        shape = self.migration.transform
        if shape is None:
            return list(root.c.keys()), list(root.c)
        assert isinstance(shape, Copy | Snapshot)
        columns = list(shape.columns)
        values: list[sa.ColumnElement[Any]] = [root.c[s] for s in shape.columns.values()]
        if isinstance(shape, Snapshot):
            document = self.dialect.sql_documents().document(root, self.source.relations)
            columns.append(shape.document)
            kind = self.target.table.c[shape.document].type
            values.append(self.dialect.document_as(document, kind))
        return columns, values

    def keys(self, after: cursor.Key | None, limit: int) -> sa.Select[Any]:
        return chunk_select(self.source, after, limit, columns=self.source.key)

    def end(
        self, after: cursor.Key | None, limit: int
    ) -> sa.Select[Any] | sa.Select[int, Any, Any]:
        """How many root rows the chunk has, and its first and last keys: one row back whatever
        the chunk's size (a single-column key: ``SELECT COUNT(*), MIN(key), MAX(key)`` over the
        chunk's keys query; a composite key, or one without ``MIN``/``MAX``: its keys, as
        :meth:`keys`)."""
        keys = self.keys(after, limit)
        if not self._bounds_aggregate():
            return keys
        chunk = keys.subquery(self.CHUNK_ALIAS)
        return sa.select(sa.func.count(), sa.func.min(chunk.c[0]), sa.func.max(chunk.c[0]))

    def _bounds_aggregate(self) -> bool:
        """Whether the chunk's bounds are read as ``MIN``/``MAX`` of its keys: a key of one
        column, of a type the database has them for (:meth:`Dialect.has_min_max`)."""
        return len(self.source.key) == 1 and self.dialect.has_min_max(self.source.key[0].type)

    def read_end(
        self, conn: sa.Connection, after: cursor.Key | None, limit: int, *, jit_off: bool = False
    ) -> Bounds:
        """Run :meth:`end`: the chunk's number of root rows and its first and last keys (both
        ``None``: no rows left). ``jit_off`` (PostgreSQL): the same statement also switches JIT
        compilation off for the rest of the transaction (``set_config('jit', 'off', true)``,
        what ``SET LOCAL jit = off`` does), so that the chunk's INSERT, planned after it, is
        not compiled to machine code; one round trip less per chunk."""
        query = self.end(after, limit)
        width = len(query.selected_columns)  # what the bounds are read from
        if jit_off:
            query = query.add_columns(sa.func.set_config("jit", "off", True))
        found = [row[:width] for row in conn.execute(query)]
        if not self._bounds_aggregate():
            if not found:
                return Bounds(0, None, None)
            return Bounds(len(found), tuple(found[0]), tuple(found[-1]))
        count, first, last = found[0]
        return Bounds(int(count), (first,), (last,)) if count else Bounds(0, None, None)

    def insert(self, first: cursor.Key, last: cursor.Key) -> Any:
        """The chunk's ``INSERT ... SELECT`` over the root rows from ``first`` to ``last``:
        bounded on both sides, so that every chunk, the first one too, is an index range of
        the root's key, and every chunk sends the same statement (compiled once)."""
        key = self.source.key
        select = sa.select(*self.values).where(cursor.from_(key, first), cursor.up_to(key, last))
        if self.source.where is not None:
            select = select.where(self.source.where)
        target = self.target
        return self.dialect.insert_select(
            target.table, self.columns, select, target.unique_key, target.on_conflict
        )


class PushdownWay:
    """Has the database build each chunk's rows with ``INSERT ... SELECT``; a chunk the
    database rejects goes the Python way (the skeleton's fallback)."""

    def __init__(
        self, statements: ChunkStatements, dst: sa.Connection, is_transient: Callable[[Any], bool]
    ) -> None:
        self.statements = statements
        self.dst = dst
        self.is_transient = is_transient
        self.session = statements.dialect.pushdown_session(dst)

    @property
    def ceiling(self) -> int:
        """It holds no rows in the client."""
        return defaults.MAX_PUSHDOWN_CHUNK_SIZE

    def read(self, after: cursor.Key | None, limit: int, next_limit: int) -> Slice | None:
        jit_off = self.session.begin_chunk()
        bounds = self.statements.read_end(self.dst, after, limit, jit_off=jit_off)
        if bounds.first is None or bounds.last is None:
            return None
        return Slice(bounds.rows, bounds.last, bounds)

    def write(self, piece: Slice, fence: Callable[[], None]) -> Written | None:
        bounds: Bounds = piece.data
        assert bounds.first is not None and bounds.last is not None
        stmt = self.statements.insert(bounds.first, bounds.last)
        try:
            result = self.dst.execute(stmt.execution_options(preserve_rowcount=True))
        except sa.exc.DBAPIError as exc:
            if self.is_transient(exc):
                raise
            self.dst.rollback()
            return None
        return Written(max(result.rowcount, 0))
