"""What a migration's saved progress belongs to: its identity, recorded in its state row.

A cursor is a position in one ordering of one set of rows. The identity names that set and
that ordering, as resolved against the real tables: the source table, the key columns in order
with the types the source database declares for them, the filter with the values bound to its
parameters, and the target table. :mod:`rowferry.state.store` refuses a trip whose identity differs
from the one its state row recorded.

Each part is normalised so that reading an unchanged migration again gives the same text: a
table is named without its schema when that schema is the connection's default one, a type is
compiled by the source's dialect in capitals with an integer's display width dropped
(``INTEGER(11)`` and ``INTEGER`` are the same column to a cursor), and runs of whitespace in the
filter count as one space. Parameter values are JSON, tagged where JSON has no exact type, as in
:mod:`rowferry.cursor` (``{"decimal": "12.50"}``, ``{"datetime": ...}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rowferry import cursor
from rowferry.errors import CursorError
from rowferry.migration.follow import Changes
from rowferry.migration.spec import Migration
from rowferry.schema.resolve import SourcePlan, TargetPlan

#: an integer type's display width (MySQL, MariaDB): not part of what the column holds
_DISPLAY_WIDTH = re.compile(r"^((?:TINY|SMALL|MEDIUM|BIG)?INT(?:EGER)?)\(\d+\)")


@dataclass(frozen=True)
class Identity:
    """The parts of a migration its cursor depends on, each as comparable text or JSON."""

    source: str
    key: tuple[tuple[str, str], ...]  # (column name, type) in key order
    where: str | None
    params: Mapping[str, Any]  # tagged JSON values
    target: str
    #: how a followed migration reads its changes (the change column, or a sweep); None: it
    #: does not follow, and its identity has no such part
    follow: str | None = None

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.key)

    def to_json(self) -> str:
        """The text stored in the state row's ``identity`` column."""
        return json.dumps(self._parts(), ensure_ascii=False, sort_keys=True)

    def changes_since(self, recorded: str | None) -> list[str]:
        """What differs from the ``recorded`` identity, one phrase per part; empty when
        nothing does or nothing was recorded. A part the recorded text lacks is not compared."""
        if recorded is None:
            return []
        try:
            before = json.loads(recorded)
            if not isinstance(before, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            return [f"its recorded identity {recorded!r} cannot be read ({exc})"]
        now = self._parts()
        return [
            _describe(part, before[part], now[part])
            for part in now
            if part in before and before[part] != now[part]
        ]

    def _parts(self) -> dict[str, Any]:
        parts = {
            "source": self.source,
            "key": [list(column) for column in self.key],
            "where": self.where,
            "params": dict(self.params),
            "target": self.target,
        }
        if self.follow is not None:
            parts["follow"] = self.follow
        return parts


def of(
    migration: Migration,
    source: SourcePlan,
    target: TargetPlan,
    source_dialect: sa.Dialect,
    target_dialect: sa.Dialect,
) -> Identity:
    """The identity of ``migration`` as resolved in ``source`` and ``target``."""
    return Identity(
        source=_table_name(source.table, source_dialect),
        key=tuple((c.name, _type_text(c, source_dialect)) for c in source.key),
        where=" ".join(migration.where.split()) if migration.where else None,
        params=_bound_params(source.where),
        target=_table_name(target.table, target_dialect),
        follow=_follow(migration),
    )


def _follow(migration: Migration) -> str | None:
    """The part of a followed migration's identity its position depends on: the change column
    and its clock (the lag may change), or a sweep."""
    how = migration.follow
    if how is None:
        return None
    return f"changes in {how.column} ({how.clock})" if isinstance(how, Changes) else "sweep"


def _table_name(table: sa.Table, dialect: sa.Dialect) -> str:
    """``schema.name``, or ``name`` when the schema is none or the connection's default."""
    if table.schema is None or table.schema == dialect.default_schema_name:
        return table.name
    return f"{table.schema}.{table.name}"


def _type_text(column: sa.Column[Any], dialect: sa.Dialect) -> str:
    """The column's type as ``dialect`` declares it, normalised (see the module's text)."""
    try:
        text = column.type.compile(dialect=dialect)
    except sa.exc.CompileError:  # a type without DDL (SQLite's column of no declared type)
        text = type(column.type).__name__
    return _DISPLAY_WIDTH.sub(r"\1", " ".join(text.upper().split()))


def _bound_params(where: sa.ColumnElement[bool] | None) -> dict[str, Any]:
    """The values bound to the filter's parameters, by name, as tagged JSON."""
    if where is None:
        return {}
    return {name: _tagged(value) for name, value in sorted(where.compile().params.items())}


def _tagged(value: Any) -> Any:
    """``value`` as JSON that keeps its type: as a cursor holds it
    (:func:`rowferry.cursor.to_json`), lists item by item, any other value tagged with its
    type's name."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, list | tuple):
        return [_tagged(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_tagged(v) for v in value), key=json.dumps)
    try:
        return cursor.to_json((value,))[0]
    except CursorError:
        return {type(value).__name__: str(value)}


_PART_NAMES = {
    "source": "source table",
    "where": "filter",
    "target": "target table",
}


def _describe(part: str, before: Any, now: Any) -> str:
    """One phrase saying how ``part`` changed, e.g. ``source table was 'a', now 'b'``."""
    if part == "key":
        return _describe_key(before, now)
    if part == "params":
        return f"filter parameters were {_json(before)}, now {_json(now)}"
    return f"{_PART_NAMES.get(part, part)} was {_quoted(before)}, now {_quoted(now)}"


def _describe_key(before: Any, now: list[list[str]]) -> str:
    """``key id was INTEGER, now VARCHAR(20)`` for a type changed under the same names, else
    both keys whole."""
    try:
        names_before = [name for name, _ in before]
    except (TypeError, ValueError):
        names_before = None
    if names_before == [name for name, _ in now]:
        return "; ".join(
            f"key {name} was {old}, now {new}"
            for (name, old), (_, new) in zip(before, now, strict=True)
            if old != new
        )
    return f"key was ({_key_text(before)}), now ({_key_text(now)})"


def _key_text(key: Any) -> str:
    try:
        return ", ".join(f"{name} {kind}" for name, kind in key)
    except (TypeError, ValueError):
        return _json(key)


def _quoted(value: Any) -> str:
    return "none" if value is None else repr(value) if isinstance(value, str) else _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
