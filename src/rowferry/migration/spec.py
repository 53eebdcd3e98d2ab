"""What a migration is: a root table, its related rows, an optional transform, and a target.

These objects only describe; they touch no database. :mod:`rowferry.schema.resolve` checks them
against the real tables before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from rowferry.errors import ConfigError
from rowferry.migration import filters

Row: TypeAlias = dict[str, Any]
Related: TypeAlias = dict[str, Any]
Transform: TypeAlias = Callable[[Row, Related], "Row | Sequence[Row] | None"]
OnConflict: TypeAlias = Literal["error", "skip", "update"]
ON_CONFLICT_POLICIES: tuple[OnConflict, ...] = ("error", "skip", "update")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,189}$")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def column_names(value: str | Sequence[str] | None) -> tuple[str, ...]:
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


@dataclass(frozen=True)
class BelongsTo:
    """The one row of ``table`` that the parent row points at (``parent.foreign_key``).

    ``references`` names the column(s) of ``table`` pointed at; the default is its primary key.
    The related value is a row (a dict), or ``None`` when the foreign key is NULL or dangling.
    """

    table: str
    foreign_key: str | Sequence[str]
    references: str | Sequence[str] | None = None
    relations: Mapping[str, Relation] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "foreign_key", column_names(self.foreign_key))
        object.__setattr__(self, "references", column_names(self.references))
        object.__setattr__(self, "relations", _relations(self.relations))


@dataclass(frozen=True)
class HasMany:
    """The rows of ``table`` whose ``foreign_key`` points at the parent row, as a list.

    ``references`` names the parent's column(s) pointed at (default: the parent's key);
    ``order_by`` orders the list (default: the table's primary key).
    """

    table: str
    foreign_key: str | Sequence[str]
    references: str | Sequence[str] | None = None
    order_by: str | Sequence[str] | None = None
    relations: Mapping[str, Relation] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "foreign_key", column_names(self.foreign_key))
        object.__setattr__(self, "references", column_names(self.references))
        object.__setattr__(self, "order_by", column_names(self.order_by))
        object.__setattr__(self, "relations", _relations(self.relations))


Relation: TypeAlias = BelongsTo | HasMany


@dataclass(frozen=True)
class Target:
    """Where rows go: a table, its unique key, and what to do when a row with that key exists.

    ``on_conflict``: ``"error"`` (default) fails the chunk, ``"skip"`` keeps the existing row,
    ``"update"`` overwrites it with the new values.

    ``source_key`` names the target column(s) holding the root row's key (in the order of the
    migration's key), which ``rowferry verify`` uses to match target rows with source rows.
    Default: the source key's own names for a plain copy; with a transform, ``unique_key`` when
    it has as many columns as the source key.
    """

    table: str
    unique_key: str | Sequence[str] | None = None
    on_conflict: OnConflict = "error"
    source_key: str | Sequence[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "unique_key", column_names(self.unique_key))
        object.__setattr__(self, "source_key", column_names(self.source_key))
        if self.on_conflict not in ON_CONFLICT_POLICIES:
            raise ConfigError(
                f"target {self.table!r}: on_conflict must be one of {ON_CONFLICT_POLICIES}, "
                f"not {self.on_conflict!r}"
            )
        if self.on_conflict != "error" and not self.unique_key:
            raise ConfigError(
                f"target {self.table!r}: on_conflict={self.on_conflict!r} needs unique_key=[...]"
            )


@dataclass(frozen=True)
class Migration:
    """One migration: rows of ``source`` (with ``relations``), through ``transform``, to ``target``.

    ``key`` orders the chunks and must be unique and non-null (default: the primary key).
    ``where`` is a SQL condition on the source table; its ``:name`` parameters come from
    ``params`` and are always bound (lists and tuples expand to ``IN`` lists).
    Without ``transform`` the source columns are copied as they are.
    ``pushdown=True`` has the database build the output rows itself (``INSERT ... SELECT``
    per chunk, no row leaves the server): it needs no transform, or a declarative one
    (:class:`rowferry.Copy`, :class:`rowferry.Snapshot`), and source and target in the same
    database. ``rowferry plan`` says whether a migration qualifies.
    """

    name: str
    source: str
    target: Target | str
    key: str | Sequence[str] | None = None
    where: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    relations: Mapping[str, Relation] = field(default_factory=dict)
    transform: Transform | None = None
    pushdown: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"migration name {self.name!r} is not valid: use 1 to 190 letters, digits, "
                "'_', '-', '.' or ':', starting with a letter or digit"
            )
        if isinstance(self.target, str):
            object.__setattr__(self, "target", Target(self.target))
        object.__setattr__(self, "key", column_names(self.key))
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "relations", _relations(self.relations))
        if self.transform is not None and not callable(self.transform):
            raise ConfigError(f"migration {self.name!r}: transform must be a function")
        if self.relations and self.transform is None:
            raise ConfigError(
                f"migration {self.name!r} loads relations but has no transform to use them"
            )
        self._check_params()
        if self.where:
            filters.check(self.name, self.where)

    def _check_params(self) -> None:
        wanted = set(_PARAM.findall(self.where or ""))
        missing = sorted(wanted - set(self.params))
        if missing:
            example = ", ".join(f"{name!r}: ..." for name in missing)
            raise ConfigError(
                f"migration {self.name!r}: where uses :{', :'.join(missing)} but params does "
                f"not give a value; add params={{{example}}} to the Migration"
            )

    @property
    def target_spec(self) -> Target:
        assert isinstance(self.target, Target)
        return self.target

    @property
    def key_columns(self) -> tuple[str, ...]:
        return column_names(self.key)
