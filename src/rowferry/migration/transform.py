"""Turning root rows and their related rows into target rows with the migration's transform.

A transform returns a dict (one target row), a list of dicts (several), or ``None`` (nothing
for this root row). Without a transform the root row is copied as it is. A root row whose
transform raises is set aside as a :class:`Failure` (for the quarantine); the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from rowferry.cursor import Key
from rowferry.errors import MigrationFailed
from rowferry.migration.spec import Migration, Related, Row


@dataclass
class Group:
    """The target rows made from one root row."""

    key: Key
    source: Row
    outputs: list[Row]


@dataclass
class Failure:
    """A root row that cannot be migrated, and why."""

    key: Key
    reason: str
    source: Row


@dataclass
class Transformed:
    groups: list[Group] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def outputs(self) -> list[Row]:
        return [row for group in self.groups for row in group.outputs]


def apply(
    migration: Migration, key_columns: Sequence[str], rows: list[Row], related: list[Related]
) -> Transformed:
    """The target rows for one chunk's root rows, grouped by root row, in root-key order."""
    result = Transformed()
    transform = migration.transform
    if transform is None:  # each root row copied as it is: nothing can fail
        outputs = [[row] for row in rows]
        result.groups = list(map(Group, keys(rows, key_columns), rows, outputs))
        return result
    for row, rel, key in zip(rows, related, keys(rows, key_columns), strict=True):
        try:
            result.groups.append(Group(key, row, _outputs(transform, row, rel)))
        except Exception as exc:  # the user's transform: any exception is this row's problem
            result.failures.append(Failure(key, f"transform: {type(exc).__name__}: {exc}", row))
    return result


def keys(rows: Sequence[Row], key_columns: Sequence[str]) -> list[Key]:
    """The key of each row, as a tuple (built by ``itemgetter``, in C)."""
    if len(key_columns) == 1:
        name = key_columns[0]
        return [(row[name],) for row in rows]
    return list(map(itemgetter(*key_columns), rows))


def _outputs(transform: Callable[[Row, Related], Any], row: Row, rel: Related) -> list[Row]:
    out: Any = transform(row, rel)
    if out is None:
        return []
    if isinstance(out, dict):
        return [out]
    if isinstance(out, list | tuple) and all(isinstance(o, dict) for o in out):
        return list(out)
    raise TypeError(f"the transform must return a dict, a list of dicts or None, not {type(out)}")


def output_columns(outputs: Sequence[Row]) -> list[str]:
    """Every column that some output row sets, in first-seen order."""
    return list(dict.fromkeys(c for out in outputs for c in out))


def outputs(
    migration: Migration, key_columns: Sequence[str], rows: list[Row], related: list[Related]
) -> list[Row]:
    """Like :func:`apply`, but a failing transform is an error (for plan and verify)."""
    result = apply(migration, key_columns, rows, related)
    if result.failures:
        first = result.failures[0]
        raise MigrationFailed(
            f"migration {migration.name!r}: the transform failed on {migration.source} key "
            f"{list(first.key)!r}: {first.reason}"
        )
    return result.outputs
