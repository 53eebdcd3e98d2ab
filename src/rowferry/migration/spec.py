"""What a migration is: a root table, its related rows, an optional transform, and a target.

These objects only describe; they touch no database. :mod:`rowferry.schema.resolve` checks them
against the real tables before anything is written.

Each class takes its arguments in the forms a migration file may write them (one column name,
several or none; a mapping or nothing; a target's table name alone) and holds them in one form,
the one its attributes declare: columns as a tuple of names, mappings as dicts, a
:class:`Migration`'s target as a :class:`Target`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from rowferry.errors import ConfigError
from rowferry.migration import filters
from rowferry.migration.follow import Changes, Follow, Sweep

Row: TypeAlias = dict[str, Any]
Related: TypeAlias = dict[str, Any]
Transform: TypeAlias = Callable[[Row, Related], "Row | Sequence[Row] | None"]
OnConflict: TypeAlias = Literal["error", "skip", "update"]
ON_CONFLICT_POLICIES: tuple[OnConflict, ...] = ("error", "skip", "update")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,189}$")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
#: the default of an omitted mapping argument (read-only, so that no call can change it)
_NOTHING: Mapping[str, Any] = MappingProxyType({})


def _column_names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Columns as a spec may name them (one name, several, or none) as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _relations(value: Mapping[str, Relation] | None) -> dict[str, Relation]:
    relations = dict(value or {})
    for name, relation in relations.items():
        if not isinstance(relation, BelongsTo | HasMany):
            raise ConfigError(f"relation {name!r} must be BelongsTo(...) or HasMany(...)")
    return relations


def _freeze(spec: object, **values: object) -> None:
    """Set the fields of the frozen ``spec`` from its own ``__init__``, once."""
    for name, value in values.items():
        object.__setattr__(spec, name, value)


@dataclass(frozen=True, init=False)
class BelongsTo:
    """The one row of ``table`` that the parent row points at (``parent.foreign_key``).

    ``references`` names the column(s) of ``table`` pointed at; empty means its primary key.
    The related value is a row (a dict), or ``None`` when the foreign key is NULL or dangling.
    """

    table: str
    foreign_key: tuple[str, ...]
    references: tuple[str, ...]
    relations: dict[str, Relation]

    def __init__(
        self,
        table: str,
        foreign_key: str | Sequence[str],
        references: str | Sequence[str] | None = None,
        relations: Mapping[str, Relation] = _NOTHING,
    ) -> None:
        _freeze(
            self,
            table=table,
            foreign_key=_column_names(foreign_key),
            references=_column_names(references),
            relations=_relations(relations),
        )


@dataclass(frozen=True, init=False)
class HasMany:
    """The rows of ``table`` whose ``foreign_key`` points at the parent row, as a list.

    ``references`` names the parent's column(s) pointed at (empty: the parent's key);
    ``order_by`` orders the list (empty: the table's primary key).
    """

    table: str
    foreign_key: tuple[str, ...]
    references: tuple[str, ...]
    order_by: tuple[str, ...]
    relations: dict[str, Relation]

    def __init__(
        self,
        table: str,
        foreign_key: str | Sequence[str],
        references: str | Sequence[str] | None = None,
        order_by: str | Sequence[str] | None = None,
        relations: Mapping[str, Relation] = _NOTHING,
    ) -> None:
        _freeze(
            self,
            table=table,
            foreign_key=_column_names(foreign_key),
            references=_column_names(references),
            order_by=_column_names(order_by),
            relations=_relations(relations),
        )


Relation: TypeAlias = BelongsTo | HasMany


@dataclass(frozen=True, init=False)
class Target:
    """Where rows go: a table, its unique key, and what to do when a row with that key exists.

    ``on_conflict``: ``"error"`` (default) fails the chunk, ``"skip"`` keeps the existing row,
    ``"update"`` overwrites it with the new values.

    ``source_key`` names the target column(s) holding the root row's key (in the order of the
    migration's key), which ``rowferry verify`` uses to match target rows with source rows.
    When it is empty: the source key's own names for a plain copy; with a transform,
    ``unique_key`` when it has as many columns as the source key.
    """

    table: str
    unique_key: tuple[str, ...]
    on_conflict: OnConflict
    source_key: tuple[str, ...]

    def __init__(
        self,
        table: str,
        unique_key: str | Sequence[str] | None = None,
        on_conflict: OnConflict = "error",
        source_key: str | Sequence[str] | None = None,
    ) -> None:
        _freeze(
            self,
            table=table,
            unique_key=_column_names(unique_key),
            on_conflict=on_conflict,
            source_key=_column_names(source_key),
        )
        if self.on_conflict not in ON_CONFLICT_POLICIES:
            raise ConfigError(
                f"target {self.table!r}: on_conflict must be one of {ON_CONFLICT_POLICIES}, "
                f"not {self.on_conflict!r}"
            )
        if self.on_conflict != "error" and not self.unique_key:
            raise ConfigError(
                f"target {self.table!r}: on_conflict={self.on_conflict!r} needs unique_key=[...]"
            )


@dataclass(frozen=True, init=False)
class Migration:
    """One migration: rows of ``source`` (with ``relations``), through ``transform``, to ``target``.

    ``key`` orders the chunks and must be unique and non-null (empty: the primary key).
    ``where`` is a SQL condition on the source table; its ``:name`` parameters come from
    ``params`` and are always bound (lists and tuples expand to ``IN`` lists).
    Without ``transform`` the source columns are copied as they are.
    ``pushdown=True`` has the database build the output rows itself (``INSERT ... SELECT``
    per chunk, no row leaves the server): it needs no transform, or a declarative one
    (:class:`rowferry.Copy`, :class:`rowferry.Snapshot`), and source and target in the same
    database. ``rowferry plan`` says whether a migration qualifies.
    ``follow``: after the backlog, capture rows that qualify late (:class:`rowferry.Changes`
    or :class:`rowferry.Sweep`, see :mod:`rowferry.migration.follow`); the migration is then
    ``caught up`` instead of ``done``.
    """

    name: str
    source: str
    target: Target
    key: tuple[str, ...]
    where: str | None
    params: dict[str, Any]
    relations: dict[str, Relation]
    transform: Transform | None
    pushdown: bool
    follow: Follow | None

    def __init__(
        self,
        name: str,
        source: str,
        target: Target | str,
        key: str | Sequence[str] | None = None,
        where: str | None = None,
        params: Mapping[str, Any] = _NOTHING,
        relations: Mapping[str, Relation] = _NOTHING,
        transform: Transform | None = None,
        pushdown: bool = False,
        follow: Follow | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"migration name {name!r} is not valid: use 1 to 190 letters, digits, "
                "'_', '-', '.' or ':', starting with a letter or digit"
            )
        _freeze(
            self,
            name=name,
            source=source,
            target=Target(target) if isinstance(target, str) else target,
            key=_column_names(key),
            where=where,
            params=dict(params),
            relations=_relations(relations),
            transform=transform,
            pushdown=pushdown,
            follow=follow,
        )
        if self.transform is not None and not callable(self.transform):
            raise ConfigError(f"migration {self.name!r}: transform must be a function")
        if self.relations and self.transform is None:
            raise ConfigError(
                f"migration {self.name!r} loads relations but has no transform to use them"
            )
        self._check_params()
        if self.where:
            filters.check(self.name, self.where)
        self._check_follow()

    def _check_follow(self) -> None:
        if self.follow is None:
            return
        if not isinstance(self.follow, Changes | Sweep):
            raise ConfigError(f"migration {self.name!r}: follow must be Changes(...) or Sweep()")
        if self.pushdown:
            raise ConfigError(
                f"migration {self.name!r}: follow runs on the Python path; remove pushdown=True"
            )
        if isinstance(self.follow, Changes) and self.target.on_conflict == "error":
            raise ConfigError(
                f"migration {self.name!r} follows changes, so it meets rows it already wrote: "
                "say what happens to them with Target(on_conflict='skip') (keep the first "
                "snapshot), 'update' (replace it with the latest) or 'skip' with the change "
                "column in unique_key (append a version per change)"
            )

    def _check_params(self) -> None:
        wanted = set(_PARAM.findall(self.where or ""))
        missing = sorted(wanted - set(self.params))
        if missing:
            example = ", ".join(f"{name!r}: ..." for name in missing)
            raise ConfigError(
                f"migration {self.name!r}: where uses :{', :'.join(missing)} but params does "
                f"not give a value; add params={{{example}}} to the Migration"
            )
