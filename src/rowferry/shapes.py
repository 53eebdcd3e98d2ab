"""Declarative transforms: output rows described rather than computed.

A :class:`Copy` or a :class:`Snapshot` is an ordinary transform (it can be called with a row and
its related rows, and the Python path calls it), and it is also a description that
:mod:`rowferry.pushdown` can turn into SQL, so that the database builds the output rows itself
(``Migration(..., pushdown=True)``). Both paths give the same rows: plain values for the mapped
columns, and the document rendered as :mod:`rowferry.documents` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .spec import Related, Row


def passes_values(transform: object) -> bool:
    """Whether the migration writes source values unchanged: no transform, or a :class:`Copy`."""
    return transform is None or isinstance(transform, Copy)


def _mapping(value: Mapping[str, str], what: str) -> dict[str, str]:
    mapping = dict(value)
    for target, source in mapping.items():
        if not isinstance(target, str) or not isinstance(source, str):
            raise ConfigError(f"{what}: columns maps target column names to source column names")
    return mapping


@dataclass(frozen=True)
class Copy:
    """Copy root columns into target columns of other names: ``{target column: source column}``."""

    columns: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", _mapping(self.columns, "Copy"))
        if not self.columns:
            raise ConfigError("Copy(columns=...) needs at least one column")

    def __call__(self, row: Row, related: Related) -> Row:
        return {target: row[source] for target, source in self.columns.items()}


@dataclass(frozen=True)
class Snapshot:
    """One target row per root row: ``columns`` copied from the root row, and ``document``, a
    JSON document of the root row with its related rows (``{**row, **related}``, relations of
    relations nested the same way)."""

    document: str
    columns: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", _mapping(self.columns, "Snapshot"))
        if not isinstance(self.document, str) or not self.document:
            raise ConfigError("Snapshot(document=...) names the target column of the document")
        if self.document in self.columns:
            raise ConfigError(
                f"Snapshot: {self.document!r} is both the document column and a copied column"
            )

    def __call__(self, row: Row, related: Related) -> Row:
        out: dict[str, Any] = {target: row[source] for target, source in self.columns.items()}
        out[self.document] = {**row, **related}
        return out


Shape = Copy | Snapshot
