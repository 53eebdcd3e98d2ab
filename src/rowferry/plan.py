"""The dry run: what a migration would do, computed with read-only queries.

:func:`plan` counts the qualifying root rows, derives the number of chunks, renders the SQL one
chunk sends (root query, one query per relation, the write) and asks the database to EXPLAIN the
read queries, warning when one would scan a whole table. It never writes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from rowferry import cursor, defaults
from rowferry.chunks import packed, pushdown
from rowferry.chunks import read as reading
from rowferry.chunks.read import chunk_select, lookup_match, relation_select
from rowferry.dialects.base import Dialect
from rowferry.dialects.connect import Bind, connect_both, describe
from rowferry.dialects.driver_errors import boundary
from rowferry.dialects.lookup import dialect_for
from rowferry.engine.sizing import ChunkSize
from rowferry.errors import ConfigError
from rowferry.migration import transform as transforming
from rowferry.migration.follow import Changes
from rowferry.migration.spec import Migration
from rowferry.schema import resolve as schema
from rowferry.schema.resolve import RelationPlan
from rowferry.state import store as state

_SHOWN_KEYS = 3


@dataclass(frozen=True)
class QueryPlan:
    """One statement of a chunk: its SQL as sent, and the database's EXPLAIN of it."""

    title: str
    sql: str
    explain: list[str]
    full_scans: list[str]


@dataclass
class PlanReport:
    migration: str
    source: str
    source_table: str
    key: list[str]
    target_table: str
    qualifying_rows: int
    rows_done: int
    rows_left: int
    chunk_size: int
    chunks_left: int
    queries: list[QueryPlan] = field(default_factory=list)
    write_sql: str | None = None
    #: "on", "available: ..." (the migration qualifies) or "not available: <why>"
    pushdown: str = "off"
    #: how the migration follows its source after the backlog, or "off"
    follow: str = "off"
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def plan(
    migration: Migration,
    source: Bind,
    target: Bind | None = None,
    *,
    chunk_size: ChunkSize = "auto",
) -> PlanReport:
    """Describe what :func:`rowferry.run` would do for ``migration``, writing nothing.

    With ``chunk_size="auto"`` the chunks are counted at the first chunk's size.
    """
    chunk_size = defaults.CHUNK_SIZE if chunk_size == "auto" else chunk_size
    context = f"plan of migration {migration.name!r}"
    with connect_both(source, target) as (src, dst), boundary(src, dst, context):
        return _plan(migration, src, dst, chunk_size)


def _plan(
    migration: Migration, src: sa.Connection, dst: sa.Connection, chunk_size: int
) -> PlanReport:
    source_plan = schema.resolve_source(src, migration)
    target_plan = schema.resolve_target(dst, migration, [c.name for c in source_plan.key])
    after = _committed_cursor(dst, migration.name)
    qualifying = _count(src, source_plan, None)
    left = _count(src, source_plan, after) if after is not None else qualifying
    report = PlanReport(
        migration=migration.name,
        source=describe(src.engine.url),
        source_table=source_plan.table.name,
        key=[c.name for c in source_plan.key],
        target_table=target_plan.table.name,
        qualifying_rows=qualifying,
        rows_done=qualifying - left,
        rows_left=left,
        chunk_size=chunk_size,
        chunks_left=math.ceil(left / chunk_size),
    )
    pushdown.check_shape(migration, source_plan, target_plan)
    dialect = dialect_for(dst)
    why = pushdown.reasons(migration, source_plan, src, dst, dialect)
    if migration.pushdown and why:
        raise ConfigError(f"migration {migration.name!r} asks for pushdown, but " + "; ".join(why))
    if migration.pushdown:
        report.pushdown = (
            "on: the database builds each chunk's rows with INSERT ... SELECT; "
            + dialect.pushdown_locking(src)
        )
        statements = pushdown.ChunkStatements(migration, source_plan, target_plan, dialect)
        _explain_pushdown(src, statements, after, chunk_size, report)
    else:
        report.pushdown = (
            f"not available: {'; '.join(why)}"
            if why
            else "available: this migration qualifies; set pushdown=True on the Migration "
            "(or run with --pushdown) to have the database build the rows, no row leaving it"
        )
        _explain_chunk(src, source_plan, after, chunk_size, report)
        report.write_sql = _write_sql(src, dst, source_plan, target_plan, migration)
    report.warnings[:0] = schema.missing_indexes(src, source_plan)
    report.follow = _follow(migration)
    if isinstance(migration.follow, Changes):
        report.warnings += schema.missing_change_index(src, source_plan, migration.follow.column)
    src.rollback()
    return report


def _follow(migration: Migration) -> str:
    how = migration.follow
    if how is None:
        return "off"
    if isinstance(how, Changes):
        return (
            f"changes in {migration.source}.{how.column} ({how.clock}), read up to "
            f"{how.lag:g} s behind the database's clock after the backlog; the target's "
            f"on_conflict={migration.target.on_conflict!r} says what a changed row does"
        )
    return (
        f"a sweep for qualifying rows the target lacks, {how.keys:,} keys per step, "
        "after the backlog"
    )


def _committed_cursor(dst: sa.Connection, name: str) -> cursor.Key | None:
    if not state.table_exists(dst):
        return None
    found = state.read(dst, name)
    dst.rollback()
    return None if found is None else cursor.decode(found.cursor_json)


def _count(conn: sa.Connection, plan: schema.SourcePlan, after: cursor.Key | None) -> int:
    stmt = sa.select(sa.func.count()).select_from(plan.table)
    if plan.where is not None:
        stmt = stmt.where(plan.where)
    if after is not None:
        stmt = stmt.where(cursor.after(plan.key, after))
    return int(conn.execute(stmt).scalar_one())


def _explain_chunk(
    conn: sa.Connection,
    plan: schema.SourcePlan,
    after: cursor.Key | None,
    chunk_size: int,
    report: PlanReport,
) -> None:
    """The root query of the next chunk (from the start when nothing is committed) and each
    relation query, with the EXPLAIN of a chunk that starts after a key (see
    :func:`_later_chunk`)."""
    dialect = dialect_for(conn)
    probe = _later_chunk(after, conn.execute(chunk_select(plan, None, 1)).first(), plan.key)
    root = chunk_select(plan, after, chunk_size)
    title = _root_title("root rows of", after, probe, plan.key)
    report.queries.append(_query(conn, dialect, title, root, chunk_select(plan, probe, chunk_size)))
    parents = [dict(r._mapping) for r in conn.execute(root)]
    _explain_relations(conn, dialect, plan.relations, parents, report)
    _warn_full_scans(report)


def _later_chunk(
    after: cursor.Key | None, first: sa.Row[Any] | None, key: Sequence[sa.Column[Any]]
) -> cursor.Key | None:
    """The key to EXPLAIN a chunk after: the committed cursor, or else the first key. Every
    chunk but the first starts after a key, and the first one's plan (from the start, in key
    order) may read "scan" where the others read an index range."""
    if after is not None or first is None:
        return after
    return tuple(first._mapping[c.name] for c in key)


def _root_title(
    what: str, after: cursor.Key | None, probe: cursor.Key | None, key: Sequence[sa.Column[Any]]
) -> str:
    names = ", ".join(c.name for c in key)
    if after is not None:
        return f"{what} the next chunk (after the committed {names} {_shown(after)})"
    if probe is None:
        return f"{what} the first chunk (from the start; the table has no qualifying rows)"
    return (
        f"{what} the first chunk (from the start; the EXPLAIN is of a later chunk, "
        f"after {names} {_shown(probe)})"
    )


def _shown(key: cursor.Key) -> str:
    return repr(key[0]) if len(key) == 1 else repr(tuple(key))


def _explain_pushdown(
    conn: sa.Connection,
    statements: pushdown.ChunkStatements,
    after: cursor.Key | None,
    chunk_size: int,
    report: PlanReport,
) -> None:
    """The pushed-down next chunk: the query that finds its end (EXPLAINed for a chunk after a
    key, as in :func:`_explain_chunk`), then the SELECT of its INSERT ... SELECT, and the
    INSERT itself as the write."""
    dialect = dialect_for(conn)
    key = statements.source.key
    probe = _later_chunk(after, conn.execute(statements.keys(None, 1)).first(), key)
    end = statements.end(after, chunk_size)
    title = _root_title("end (count, first and last keys) of", after, probe, key)
    report.queries.append(_query(conn, dialect, title, end, statements.end(probe, chunk_size)))
    keys = conn.execute(statements.keys(after, chunk_size)).all()
    if keys:
        insert = statements.insert(tuple(keys[0]), tuple(keys[-1]))
        select = insert.select
        title = "rows built by the database for that chunk (the SELECT of its INSERT)"
        report.queries.append(_query(conn, dialect, title, select, select))
        report.write_sql = _literal_sql(conn, insert)
    _warn_full_scans(report, derived=statements.derived)


def _warn_full_scans(report: PlanReport, derived: frozenset[str] = frozenset()) -> None:
    """Warn of each table a query scans whole; ``derived`` names the query's own subqueries,
    which the database reads whole by design."""
    for query in report.queries:
        for table in query.full_scans:
            if table in derived:
                continue
            report.warnings.append(
                f"EXPLAIN of {query.title}: the database plans a full scan of {table!r}. On a "
                "large table every chunk would read all of it; on a small one the optimizer "
                "may simply prefer a scan (check again on production-sized data)"
            )


def _explain_relations(
    conn: sa.Connection,
    dialect: Dialect,
    relations: tuple[RelationPlan, ...],
    parents: list[dict[str, Any]],
    report: PlanReport,
) -> None:
    for rel in relations:
        keys = list(dict.fromkeys(tuple(p[c] for c in rel.parent_columns) for p in parents))
        keys = [k for k in keys if None not in k] or [tuple(None for _ in rel.parent_columns)]
        title = f"relation {rel.name!r} ({len(keys)} keys in this chunk, {_SHOWN_KEYS} shown)"
        packing = packed.packing(rel, conn.dialect) if dialect.packs_relations() else None
        if packing is not None:
            title += ", packed as JSON by the server: one row per key (sent with SET STATEMENT)"
        shown, real = (
            packing.select(lookup_match(rel, some, dialect))
            if packing is not None
            else relation_select(rel, some, dialect)
            for some in (keys[:_SHOWN_KEYS], keys)
        )
        report.queries.append(_query(conn, dialect, title, shown, real))
        children = [dict(r._mapping) for r in conn.execute(relation_select(rel, keys, dialect))]
        _explain_relations(conn, dialect, rel.children, children, report)


def _query(
    conn: sa.Connection,
    dialect: Dialect,
    title: str,
    shown: sa.ClauseElement,
    real: sa.ClauseElement,
) -> QueryPlan:
    explain = dialect.explain(conn, _literal_sql(conn, real, to_send=True))
    scans = dialect.full_scans(explain)
    return QueryPlan(title, _literal_sql(conn, shown), explain, scans)


def _literal_sql(conn: sa.Connection, stmt: Any, *, to_send: bool = False) -> str:
    """The statement with its values inlined: as the driver takes it (``to_send``, with
    ``%%`` for ``%`` on MySQL), or as the server receives it, for people to read."""
    try:
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    except (sa.exc.CompileError, NotImplementedError):
        compiled = stmt.compile(dialect=conn.dialect)
    text = str(compiled)
    if not to_send and conn.dialect.paramstyle in ("format", "pyformat"):
        text = text.replace("%%", "%")
    return text


def _write_sql(
    src: sa.Connection,
    dst: sa.Connection,
    source: schema.SourcePlan,
    target: schema.TargetPlan,
    migration: Migration,
) -> str:
    """The write statement, with the columns the transform gives on a sample of real rows."""
    bound, reader = reading.for_migration(migration, source, dialect_for(src))
    sample = reader.read(src, None, _SHOWN_KEYS)
    keys = [c.name for c in source.key]
    rows = transforming.outputs(bound, keys, sample.rows, sample.related)
    columns = transforming.output_columns(rows) or list(target.table.c.keys())
    schema.check_output_columns(target, columns, migration)
    return dialect_for(dst).describe_write(
        target.table, columns, target.unique_key, target.on_conflict
    )
