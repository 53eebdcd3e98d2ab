"""Checking a migration against the real tables, before anything is written.

:func:`resolve_source` and :func:`resolve_target` reflect the tables a migration names and return
plans holding SQLAlchemy ``Table`` objects. Every problem becomes a :class:`SchemaError` or
:class:`ConfigError` that names the table, column or filter and says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine.reflection import Inspector

from rowferry.dialects import exact_types
from rowferry.dialects.connect import describe, mask_secrets
from rowferry.dialects.lookup import dialect_for
from rowferry.errors import ConfigError, SchemaError
from rowferry.migration import filters
from rowferry.migration.spec import BelongsTo, HasMany, Migration, OnConflict, Relation
from rowferry.schema import catalog


@dataclass(frozen=True)
class RelationPlan:
    """A relation bound to its table: ``table.child_columns`` match ``parent.parent_columns``."""

    name: str
    many: bool
    table: sa.Table
    parent_columns: tuple[str, ...]
    child_columns: tuple[str, ...]
    order_by: tuple[sa.ColumnElement[Any], ...]
    children: tuple[RelationPlan, ...]


@dataclass(frozen=True)
class SourcePlan:
    """The root table, its chunk key, the bound filter, and the relation tree."""

    table: sa.Table
    key: tuple[sa.Column[Any], ...]
    where: sa.ColumnElement[bool] | None
    relations: tuple[RelationPlan, ...]


@dataclass(frozen=True)
class TargetPlan:
    table: sa.Table
    unique_key: tuple[str, ...]
    on_conflict: OnConflict
    #: target columns holding the root key, matching the source key column for column;
    #: empty when the migration does not say and it cannot be inferred
    source_key: tuple[str, ...] = ()


class _Reflector:
    """Reflects tables once each, naming the database in its errors.

    :meth:`prefetch` reflects every table a migration names in one go: with one catalog
    statement of rowferry's own (:mod:`rowferry.schema.catalog`) when the tables are plain,
    otherwise with SQLAlchemy's reflection (on PostgreSQL a handful of catalog queries instead of
    ~10 per table). It matters on a slow network, as in a Lambda function far from its database.
    Keys and indexes come from the reflected objects.
    """

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.inspector = _lean_inspector(conn)
        self.metadata = sa.MetaData()  # the tables SQLAlchemy reflects
        self.read: catalog.Tables = {}  # those read by rowferry's catalog statement
        self.where = describe(conn.engine.url)

    def prefetch(self, names: Iterable[str]) -> None:
        by_schema: dict[str | None, list[str]] = {}
        for name in dict.fromkeys(names):
            prefix, _, bare = name.rpartition(".")
            by_schema.setdefault(prefix or None, []).append(bare)
        for schema, bare_names in by_schema.items():
            read = catalog.read(self.conn, schema, bare_names)
            if read is not None:
                self.read.update(read)
                continue
            with suppress(sa.exc.InvalidRequestError):  # one is missing: table() names it
                self.metadata.reflect(
                    cast(Any, self.inspector), schema=schema, only=bare_names, resolve_fks=False
                )

    def table(self, name: str) -> sa.Table:
        return exact_types.read_exactly(self._table(name), dialect_for(self.conn))

    def _table(self, name: str) -> sa.Table:
        schema, _, bare = name.rpartition(".")
        key = name if schema else bare
        if key in self.read:
            return self.read[key]
        if key in self.metadata.tables:
            return self.metadata.tables[key]
        try:
            return sa.Table(
                bare,
                self.metadata,
                schema=schema or None,
                autoload_with=cast(Any, self.inspector),
                resolve_fks=False,
            )
        except sa.exc.NoSuchTableError:
            raise SchemaError(f"table {name!r} does not exist in {self.where}") from None

    def column(self, table: sa.Table, name: str, role: str) -> sa.Column[Any]:
        if name not in table.c:
            known = ", ".join(table.c.keys())
            raise SchemaError(
                f"{role}: column {name!r} does not exist in table {table.name!r} "
                f"(its columns: {known})"
            )
        return table.c[name]

    @staticmethod
    def unique_sets(table: sa.Table) -> list[set[str]]:
        """Column sets that a primary key, unique constraint or unique index makes unique."""
        sets = [set(c.name for c in table.primary_key.columns)]
        sets += [
            {c.name for c in constraint.columns}
            for constraint in table.constraints
            if isinstance(constraint, sa.UniqueConstraint)
        ]
        sets += [{c.name for c in index.columns} for index in table.indexes if index.unique]
        return [s for s in sets if s]

    @staticmethod
    def indexed_prefixes(table: sa.Table) -> list[tuple[str, ...]]:
        """Column lists of every index, unique constraint and the primary key, in order."""
        found = [tuple(c.name for c in table.primary_key.columns)]
        found += [tuple(c.name for c in index.columns) for index in table.indexes]
        found += [
            tuple(c.name for c in constraint.columns)
            for constraint in table.constraints
            if isinstance(constraint, sa.UniqueConstraint)
        ]
        return [f for f in found if f]


#: what reflection would read and rowferry never uses
_UNUSED = (
    "get_multi_foreign_keys",
    "get_multi_check_constraints",
    "get_multi_table_comment",
    "get_multi_table_options",
)


def _lean_inspector(conn: sa.Connection) -> Inspector:
    """An inspector that skips foreign keys, check constraints, comments and table options:
    on PostgreSQL four catalog queries fewer per trip (a trip's statements are counted, and on
    a slow network each is a round trip); elsewhere less parsing. tests/test_engine.py counts
    the catalog queries, so a SQLAlchemy that reflects differently shows there."""
    inspector = sa.inspect(conn)
    base = type(inspector)
    if base not in _LEAN:
        _LEAN[base] = _lean_class(base)
    inspector.__class__ = _LEAN[base]
    return inspector


_LEAN: dict[type[Inspector], type[Inspector]] = {}


def _lean_class(base: type[Inspector]) -> type[Inspector]:
    @contextmanager
    def same_inspector(self: Inspector) -> Iterator[Inspector]:
        yield self  # MetaData.reflect would otherwise make a plain one of the dialect's class

    members: dict[str, Any] = {name: _nothing for name in _UNUSED}
    members["_inspection_context"] = same_inspector
    return type(f"Lean{base.__name__}", (base,), members)


def _nothing(self: Inspector, **kw: Any) -> dict[Any, Any]:
    return {}


def _relation_tables(relations: Mapping[str, Relation]) -> list[str]:
    names: list[str] = []
    for rel in relations.values():
        names += [rel.table, *_relation_tables(rel.relations)]
    return names


def _primary_key(table: sa.Table, role: str) -> tuple[str, ...]:
    names = tuple(c.name for c in table.primary_key.columns)
    if not names:
        raise SchemaError(
            f"{role}: table {table.name!r} has no primary key; name its unique columns explicitly"
        )
    return names


def resolve(
    src: sa.Connection, dst: sa.Connection, migration: Migration
) -> tuple[SourcePlan, TargetPlan]:
    """Both sides of a migration, reflected in one go when they are the same database."""
    shared = _Reflector(src) if src is dst else None
    if shared is not None:
        shared.prefetch(
            [migration.source, *_relation_tables(migration.relations), migration.target.table]
        )
    source = resolve_source(src, migration, shared)
    target = resolve_target(dst, migration, [c.name for c in source.key], shared)
    return source, target


def resolve_source(
    conn: sa.Connection, migration: Migration, reflect: _Reflector | None = None
) -> SourcePlan:
    """Reflect and check the root table, its key, its filter and every relation."""
    if reflect is None:
        reflect = _Reflector(conn)
        reflect.prefetch([migration.source, *_relation_tables(migration.relations)])
    table = reflect.table(migration.source)
    role = f"migration {migration.name!r}, source {migration.source!r}"
    key_names = migration.key or _primary_key(table, role)
    key = tuple(reflect.column(table, name, f"{role} key") for name in key_names)
    _check_key(reflect, table, key, role)
    dialect_for(conn).read_as_stored(table, key_names)
    where = _bind_where(migration)
    relations = _resolve_relations(reflect, table, key_names, migration.relations, role)
    plan = SourcePlan(table=table, key=key, where=where, relations=relations)
    _check_where(conn, plan, migration)
    return plan


def _check_key(
    reflect: _Reflector, table: sa.Table, key: Sequence[sa.Column[Any]], role: str
) -> None:
    names = {c.name for c in key}
    kinds = {c.name: exact_types.declared(c.type) for c in key}
    _refuse_key(
        role,
        [n for n, kind in kinds.items() if isinstance(kind, sa.Float)],
        "hold floating-point numbers, which are not compared exactly (a FLOAT column holds "
        "other values than the cursor that reads it, and NaN equals nothing); choose an exact "
        "key (integers, decimals, strings, dates)",
    )
    if not dialect_for(reflect.conn).exact_decimals:
        _refuse_key(
            role,
            [n for n, kind in kinds.items() if isinstance(kind, sa.Numeric)],
            "are DECIMAL/NUMERIC, which SQLite holds and compares as doubles, text or "
            "integers; choose an INTEGER or TEXT key",
        )
    dialect = dialect_for(reflect.conn)
    nullable = [
        c.name for c in key if c.nullable and not dialect.never_null(reflect.conn, table, c)
    ]
    if nullable:
        raise SchemaError(f"{role}: key column(s) {nullable} may be NULL; a key must be NOT NULL")
    if not any(unique <= names for unique in reflect.unique_sets(table)):
        raise SchemaError(
            f"{role}: key ({', '.join(c.name for c in key)}) is not unique in {table.name!r}: "
            "no primary key, unique constraint or unique index covers it; "
            "add one, or choose unique key columns with key=[...]"
        )


def _refuse_key(role: str, columns: list[str], why: str) -> None:
    if columns:
        raise SchemaError(f"{role}: key column(s) {columns} {why} with key=[...]")


def _bind_where(migration: Migration) -> sa.ColumnElement[bool] | None:
    return filters.bind(migration.where, migration.params) if migration.where else None


def _check_where(conn: sa.Connection, plan: SourcePlan, migration: Migration) -> None:
    """Run the filter once with ``LIMIT 0``: a bad column or a syntax error shows up here."""
    if plan.where is None:
        return
    probe = sa.select(*plan.key).where(plan.where).suffix_with("LIMIT 0")
    try:
        conn.execute(probe).fetchall()
    except sa.exc.DBAPIError as exc:
        conn.rollback()
        reason = mask_secrets(str(exc.orig)).strip()
        raise ConfigError(
            f"migration {migration.name!r}: the filter {migration.where!r} does not work on "
            f"{plan.table.name!r}: {reason}"
        ) from exc
    conn.rollback()


def _resolve_relations(
    reflect: _Reflector,
    parent: sa.Table,
    parent_key: tuple[str, ...],
    relations: Mapping[str, Relation],
    role: str,
) -> tuple[RelationPlan, ...]:
    return tuple(
        _resolve_relation(reflect, parent, parent_key, name, rel, role)
        for name, rel in relations.items()
    )


def _resolve_relation(
    reflect: _Reflector,
    parent: sa.Table,
    parent_key: tuple[str, ...],
    name: str,
    rel: Relation,
    role: str,
) -> RelationPlan:
    where = f"{role}, relation {name!r}"
    table = reflect.table(rel.table)
    if isinstance(rel, BelongsTo):
        parent_cols, child_cols = rel.foreign_key, rel.references or _primary_key(table, where)
    else:
        parent_cols, child_cols = rel.references or parent_key, rel.foreign_key
    if len(parent_cols) != len(child_cols):
        raise ConfigError(f"{where}: {parent_cols} and {child_cols} have different lengths")
    for col in parent_cols:
        reflect.column(parent, col, where)
    for col in child_cols:
        reflect.column(table, col, where)
    order_by: tuple[sa.ColumnElement[Any], ...] = ()
    if isinstance(rel, HasMany):
        names = rel.order_by or tuple(c.name for c in table.primary_key.columns)
        order_by = tuple(reflect.column(table, c, f"{where} order_by") for c in names)
    key = tuple(c.name for c in table.primary_key.columns)
    children = _resolve_relations(reflect, table, key, rel.relations, where)
    _check_no_shadowing(table, children, where)
    return RelationPlan(
        name, isinstance(rel, HasMany), table, parent_cols, child_cols, order_by, children
    )


def _check_no_shadowing(table: sa.Table, children: Sequence[RelationPlan], where: str) -> None:
    for child in children:
        if child.name in table.c:
            raise ConfigError(
                f"{where}: nested relation {child.name!r} has the name of a column of "
                f"{table.name!r}; rename the relation"
            )


def missing_indexes(conn: sa.Connection, plan: SourcePlan) -> list[str]:
    """Relations whose lookup columns lead no index: each chunk would scan their whole table."""
    reflect = _Reflector(conn)
    warnings: list[str] = []

    def walk(relations: Sequence[RelationPlan]) -> None:
        for rel in relations:
            prefixes = reflect.indexed_prefixes(rel.table)
            n = len(rel.child_columns)
            if not any(set(p[:n]) == set(rel.child_columns) for p in prefixes if len(p) >= n):
                cols = ", ".join(rel.child_columns)
                warnings.append(
                    f"relation {rel.name!r}: no index on {rel.table.name}({cols}); every chunk "
                    f"will scan all of {rel.table.name!r}. Add: CREATE INDEX ON "
                    f"{rel.table.name} ({cols})"
                )
            walk(rel.children)

    walk(plan.relations)
    return warnings


def missing_change_index(conn: sa.Connection, plan: SourcePlan, column: str) -> list[str]:
    """A followed migration's change column that leads no index: each trip would scan the
    whole source table to find what changed."""
    prefixes = _Reflector(conn).indexed_prefixes(plan.table)
    if any(p and p[0] == column for p in prefixes):
        return []
    table = plan.table.name
    return [
        f"follow: no index starts with {table}.{column}; every trip will scan all of "
        f"{table!r} to find what changed. Add: CREATE INDEX ON {table} ({column})"
    ]


def resolve_target(
    conn: sa.Connection,
    migration: Migration,
    source_key: Sequence[str],
    reflect: _Reflector | None = None,
) -> TargetPlan:
    """Reflect and check the target table, its unique key and the columns holding the
    source key (``source_key`` are the names of the source's key columns)."""
    spec = migration.target
    if reflect is None:  # another database than the source's
        reflect = _Reflector(conn)
        reflect.prefetch([spec.table])
    role = f"migration {migration.name!r}, target {spec.table!r}"
    table = reflect.table(spec.table)
    unique_key = spec.unique_key
    for name in unique_key:
        reflect.column(table, name, f"{role} unique_key")
    if unique_key and set(unique_key) not in reflect.unique_sets(table):
        raise SchemaError(
            f"{role}: no primary key or unique index on exactly ({', '.join(unique_key)}); "
            f"create one, e.g. CREATE UNIQUE INDEX ON {spec.table} ({', '.join(unique_key)})"
        )
    holding = _source_key_columns(migration, unique_key, source_key)
    for name in holding:
        reflect.column(table, name, f"{role} source_key")
    return TargetPlan(table, unique_key, spec.on_conflict, holding)


def _source_key_columns(
    migration: Migration, unique_key: tuple[str, ...], source_key: Sequence[str]
) -> tuple[str, ...]:
    declared = migration.target.source_key
    if declared:
        if len(declared) != len(source_key):
            raise ConfigError(
                f"migration {migration.name!r}: target source_key {declared} must have one "
                f"column per source key column {tuple(source_key)}"
            )
        return declared
    if migration.transform is None:
        return tuple(source_key)
    return unique_key if len(unique_key) == len(source_key) else ()


def check_copy_columns(source: SourcePlan, target: TargetPlan, migration: Migration) -> None:
    """Without a transform every source column is copied: the target must have them all."""
    if migration.transform is not None:
        return
    missing = [c for c in source.table.c.keys() if c not in target.table.c]  # noqa: SIM118
    if missing:
        raise SchemaError(
            f"migration {migration.name!r}: target {target.table.name!r} lacks source column(s) "
            f"{missing}; add them, or give a transform that maps the columns"
        )


def check_output_columns(target: TargetPlan, columns: Sequence[str], migration: Migration) -> None:
    """The transform's output columns must all exist in the target table."""
    unknown = [c for c in columns if c not in target.table.c]
    if unknown:
        raise SchemaError(
            f"migration {migration.name!r}: the transform produced column(s) {unknown} that "
            f"target {target.table.name!r} does not have (its columns: "
            f"{', '.join(target.table.c.keys())})"
        )
