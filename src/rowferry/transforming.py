"""Turning root rows and their related rows into target rows with the migration's transform.

A transform returns a dict (one target row), a list of dicts (several), or ``None`` (nothing
for this root row). Without a transform the root row is copied as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import MigrationFailed
from .spec import Migration, Related, Row


def outputs(
    migration: Migration, key_columns: Sequence[str], rows: list[Row], related: list[Related]
) -> list[Row]:
    """The target rows for one chunk's root rows, in root-key order."""
    if migration.transform is None:
        return rows
    found: list[Row] = []
    for row, rel in zip(rows, related, strict=True):
        found.extend(_apply(migration, key_columns, row, rel))
    return found


def _apply(migration: Migration, key_columns: Sequence[str], row: Row, rel: Related) -> list[Row]:
    assert migration.transform is not None
    try:
        out: Any = migration.transform(row, rel)
    except Exception as exc:
        key = [row[c] for c in key_columns]
        raise MigrationFailed(
            f"migration {migration.name!r}: the transform failed on {migration.source} key "
            f"{key!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if out is None:
        return []
    if isinstance(out, dict):
        return [out]
    if isinstance(out, list | tuple) and all(isinstance(o, dict) for o in out):
        return list(out)
    raise MigrationFailed(
        f"migration {migration.name!r}: the transform must return a dict, a list of dicts or "
        f"None, not {type(out).__name__}"
    )


def output_columns(outputs: Sequence[Row]) -> list[str]:
    """Every column that some output row sets, in first-seen order."""
    return list(dict.fromkeys(c for out in outputs for c in out))
