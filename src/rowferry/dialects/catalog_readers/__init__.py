"""Readers of each database's catalog in one hand-written statement, for
:func:`rowferry.schema.catalog.read`.

One module per database family holds its statement, the types SQLAlchemy's reflection makes of
what the statement returns, and its ``READER``; the dialect object gives the reader written for
its connection's driver (:meth:`rowferry.dialects.base.Dialect.catalog_reader`). This module
holds what they share: a table as a catalog describes it (:class:`Found`), the refusal of a
table that is not plain enough (:class:`NotPlain`), and the reader's contract
(:class:`CatalogReader`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

#: a SQLAlchemy type class, as a dialect's ``ischema_names`` maps type names to them
TypeMaker = type[sa.types.TypeEngine[Any]]


@dataclass
class Found:
    """One table as the catalog describes it."""

    name: str
    columns: list[sa.Column[Any]] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    #: (name, columns) of unique constraints
    uniques: list[tuple[str | None, list[str]]] = field(default_factory=list)
    #: (name, columns, unique) of the other indexes
    indexes: list[tuple[str, list[str], bool]] = field(default_factory=list)


class NotPlain(Exception):
    """A table a catalog reader leaves to SQLAlchemy: raised by the readers, caught by
    :func:`rowferry.schema.catalog.read` (it never leaves it), which then declines."""


def make_column(
    name: str, kind: sa.types.TypeEngine[Any], not_null: Any, default: Any, *extra: Any
) -> sa.Column[Any]:
    """A column as SQLAlchemy's reflection makes it, its default the catalog's text."""
    return sa.Column(
        name,
        kind,
        *extra,
        nullable=not not_null,
        server_default=sa.text(str(default)) if default is not None else None,
    )


#: the catalog's rows for some tables of a schema (None: the connection's own)
Fetch = Callable[[sa.Connection, "str | None", list[str]], Sequence[Any]]
#: the tables those rows describe
Build = Callable[[sa.Dialect, list[tuple[Any, ...]]], list[Found]]


@dataclass(frozen=True)
class CatalogReader:
    """One database's reader: ``fetch`` sends the statement, ``build`` makes the tables of its
    rows; either raises :class:`NotPlain` for a table SQLAlchemy must reflect."""

    fetch: Fetch
    build: Build
