"""Declarative transforms: output rows described rather than computed.

A :class:`Copy` or a :class:`Snapshot` is an ordinary transform (it can be called with a row and
its related rows, and the Python path calls it), and it is also a description that
:mod:`rowferry.chunks.pushdown` can turn into SQL, so that the database builds the output rows
itself (``Migration(..., pushdown=True)``). Both paths give the same rows: plain values for the
mapped columns, and the document rendered as :mod:`rowferry.documents` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from rowferry import documents
from rowferry.errors import ConfigError
from rowferry.migration.spec import Migration, Related, Row


def reads_json_as_text(transform: object) -> bool:
    """Whether the root's JSON columns are read as their text (``CAST(col AS TEXT)``): for no
    transform, a :class:`Copy` and a :class:`Snapshot`, which write them unchanged. Parsed, a
    JSON ``null`` would be indistinguishable from SQL NULL, and a bare JSON string from JSON
    text. A :class:`Snapshot` parses them for its document (see :func:`bind`)."""
    return transform is None or isinstance(transform, Copy | Snapshot)


def bind(migration: Migration, table: sa.Table) -> Migration:
    """The migration as it runs on its source ``table``: a :class:`Snapshot` learns which of
    the root's columns are JSON, read as text (:func:`reads_json_as_text`); it copies their
    text and puts their parsed values (:func:`rowferry.documents.loads`: decimals exact) in
    its document."""
    shape = migration.transform
    if not isinstance(shape, Snapshot):
        return migration
    json_columns = frozenset(c.name for c in table.c if isinstance(c.type, sa.JSON))
    return replace(migration, transform=shape.reading_json_text(json_columns))


#: the default of an omitted ``columns`` (read-only, so that no call can change it)
_NO_COLUMNS: Mapping[str, str] = MappingProxyType({})


def _mapping(value: Mapping[str, str], what: str) -> dict[str, str]:
    mapping = dict(value)
    for target, source in mapping.items():
        if not isinstance(target, str) or not isinstance(source, str):
            raise ConfigError(f"{what}: columns maps target column names to source column names")
    return mapping


@dataclass(frozen=True, init=False)
class Copy:
    """Copy root columns into target columns of other names: ``{target column: source column}``."""

    columns: dict[str, str]

    def __init__(self, columns: Mapping[str, str]) -> None:
        object.__setattr__(self, "columns", _mapping(columns, "Copy"))
        if not self.columns:
            raise ConfigError("Copy(columns=...) needs at least one column")

    def __call__(self, row: Row, related: Related) -> Row:
        return {target: row[source] for target, source in self.columns.items()}


@dataclass(frozen=True, init=False)
class Snapshot:
    """One target row per root row: ``columns`` copied from the root row, and ``document``, a
    JSON document of the root row with its related rows (``{**row, **related}``, relations of
    relations nested the same way)."""

    document: str
    columns: dict[str, str]
    #: root columns that are JSON, read as their text (set by :func:`bind`)
    _json: frozenset[str] = field(init=False, repr=False, compare=False)

    def __init__(self, document: str, columns: Mapping[str, str] = _NO_COLUMNS) -> None:
        object.__setattr__(self, "columns", _mapping(columns, "Snapshot"))
        object.__setattr__(self, "document", document)
        object.__setattr__(self, "_json", frozenset())
        if not isinstance(self.document, str) or not self.document:
            raise ConfigError("Snapshot(document=...) names the target column of the document")
        if self.document in self.columns:
            raise ConfigError(
                f"Snapshot: {self.document!r} is both the document column and a copied column"
            )

    def reading_json_text(self, json_columns: frozenset[str]) -> Snapshot:
        """This snapshot, for root rows whose ``json_columns`` hold JSON text."""
        bound = Snapshot(self.document, self.columns)
        object.__setattr__(bound, "_json", json_columns)
        return bound

    def __call__(self, row: Row, related: Related) -> Row:
        out: dict[str, Any] = {target: row[source] for target, source in self.columns.items()}
        parsed = {c: _parsed(row[c]) for c in self._json}
        out[self.document] = {**row, **parsed, **related}
        return out


def _parsed(value: Any) -> Any:
    """JSON text parsed; a number (a bare JSON number SQLite holds as one) or NULL as it is."""
    return documents.loads(value) if isinstance(value, str) else value


Shape = Copy | Snapshot
