"""How verify compares values: canonical renderings, per-range checksums, document diffs.

Numerically equal decimals render the same, JSON documents compare parsed, a UUID equals its
text; a range's checksum is the sum of its rows' SHA-1 digests (mod 2**160), so it does not
depend on the order either database returns rows in.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from rowferry import cursor, documents
from rowferry.migration.spec import Row
from rowferry.schema import resolve
from rowferry.verify.report import Findings, RangeMismatch

Key = cursor.Key
MODULUS = 2**160


class Renderer:
    """The canonical rendering of a copied row, equal for equal values on every database."""

    def __init__(self, source: resolve.SourcePlan, target: resolve.TargetPlan) -> None:
        self.columns = list(source.table.c.keys())
        pairs = [(source.table.c[n], target.table.c[n]) for n in self.columns]
        self.json = [is_json_column(a) or is_json_column(b) for a, b in pairs]
        self.uuid = [_is_uuid(a) or _is_uuid(b) for a, b in pairs]

    def digest(self, row: Row) -> bytes:
        values = [
            _canonical(_uuid_text(row[n]) if u else row[n], j)
            for n, j, u in zip(self.columns, self.json, self.uuid, strict=True)
        ]
        text = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha1(text.encode()).digest()


class RangeSums:
    """One range's checksum on each side: the sum of the rows' SHA-1 digests modulo 2**160,
    so it does not depend on the order in which either database sorts the rows."""

    def __init__(self, render: Renderer, norm: KeyForm, keys: list[Key], rows: list[Row]) -> None:
        self.render, self.norm = render, norm
        self.source = {norm(k): render.digest(r) for k, r in zip(keys, rows, strict=True)}
        self.source_sum = sum(int.from_bytes(d) for d in self.source.values()) % MODULUS
        self.target_sum = self.target_rows = 0
        self.differing = Findings()
        self._seen: set[Key] = set()

    def add_target(self, rows: Iterable[tuple[Key, Row]]) -> None:
        for key, row in rows:
            digest = self.render.digest(row)
            self.target_sum = (self.target_sum + int.from_bytes(digest)) % MODULUS
            self.target_rows += 1
            normal = self.norm(key)
            wanted = self.source.get(normal)
            if wanted is not None and wanted != digest and normal not in self._seen:
                self._seen.add(normal)
                self.differing.add(key)

    def differ(self) -> bool:
        return self.source_sum != self.target_sum

    def mismatch(self, first: Key, last: Key) -> RangeMismatch:
        return RangeMismatch(
            first,
            last,
            len(self.source),
            self.target_rows,
            f"{self.source_sum:040x}",
            f"{self.target_sum:040x}",
            self.differing,
        )


# -- values ---------------------------------------------------------------------------------


def is_json_column(column: sa.ColumnElement[Any]) -> bool:
    return isinstance(column.type, sa.JSON)


def keyed_select(
    holding: Sequence[sa.Column[Any]], columns: Sequence[sa.ColumnElement[Any]]
) -> sa.Select[Any]:
    """``columns`` of the target, after its source-key columns (labelled apart)."""
    return sa.select(*[c.label(f"rf_key_{i}") for i, c in enumerate(holding)], *columns)


def key_of(row: sa.Row[Any], holding: Sequence[sa.Column[Any]]) -> Key:
    return tuple(row._mapping[f"rf_key_{i}"] for i in range(len(holding)))


def member(columns: Sequence[sa.ColumnElement[Any]], keys: list[Key]) -> sa.ColumnElement[bool]:
    if len(columns) == 1:
        return columns[0].in_([k[0] for k in keys])
    return sa.tuple_(*columns).in_([tuple(k) for k in keys])


def _is_uuid(column: sa.ColumnElement[Any]) -> bool:
    return isinstance(column.type, sa.Uuid)


def _uuid_text(value: Any) -> Any:
    """A UUID, or the text of one (``CHAR(32)`` on SQLite), as its canonical text."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return value
    return value


class KeyForm:
    """Keys as compared across the two sides and the quarantine: in a key column that is a
    UUID on either side, UUIDs and their text (with or without dashes) compare equal."""

    def __init__(
        self, source: Sequence[sa.ColumnElement[Any]], target: Sequence[sa.ColumnElement[Any]]
    ) -> None:
        self.uuids = [_is_uuid(a) or _is_uuid(b) for a, b in zip(source, target, strict=True)]

    def __call__(self, key: Key) -> Key:
        return tuple(
            _uuid_text(v) if u or isinstance(v, uuid.UUID) else v
            for v, u in zip(key, self.uuids, strict=True)
        )


def _number(value: int | Decimal) -> str:
    """Numerically equal numbers render the same: ``12.5``, ``12.50`` and ``12.5000``."""
    number = Decimal(value)
    if not number.is_finite():
        return str(number)
    return "0" if number == 0 else format(number.normalize(), "f")


def _canonical(value: Any, is_json: bool) -> Any:
    if value is None:
        return None
    if is_json and isinstance(value, str):
        try:
            return ["j", _canonical_document(documents.loads(value))]
        except ValueError:
            return ["s", value]
    if is_json and isinstance(value, int | float) and not isinstance(value, bool):
        # a bare JSON number SQLite's numeric affinity holds as a number
        return ["j", _canonical_document(documents.loads(documents.dumps(value)))]
    if isinstance(value, bool):
        return ["n", str(int(value))]
    if isinstance(value, int | Decimal):
        return ["n", _number(value)]
    if isinstance(value, float):
        return ["f", repr(value)]
    if isinstance(value, str | uuid.UUID):
        return ["s", str(value)]
    if isinstance(value, dict | list):
        return ["j", _canonical_document(value)]
    try:
        return ["v", documents.dumps(value)]
    except TypeError:
        return ["o", repr(value)]


def _canonical_document(value: Any) -> str:
    def normal(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): normal(x) for k, x in v.items()}
        if isinstance(v, list):
            return [normal(x) for x in v]
        if isinstance(v, int | Decimal) and not isinstance(v, bool):
            return "\x00n" + _number(v)
        return v

    return json.dumps(normal(value), sort_keys=True, ensure_ascii=False, default=str)


def rows_difference(outputs: list[Row], stored: list[Row], json_columns: set[str]) -> str | None:
    """Why the rows stored under one key are not the transform's rows, or ``None``. Stored
    rows beyond the transform's are the duplicate check's business."""
    if not outputs:
        return f"the transform gives no row, {len(stored)} stored"
    left = list(stored)
    for output in outputs:
        if not left:
            return f"the transform gives {len(outputs)} rows, {len(stored)} stored"
        differences = [_row_difference(output, row, json_columns) for row in left]
        if None not in differences:
            return differences[0]
        left.pop(differences.index(None))
    return None


def _row_difference(output: Row, stored: Row, json_columns: set[str]) -> str | None:
    for column, expected in output.items():
        if column in json_columns or isinstance(expected, dict | list):
            found = _document_difference(column, _document(expected), _document(stored[column]))
        elif _same_value(expected, stored[column]):
            found = None
        else:
            found = f"{column}: expected {_short(expected)}, stored {_short(stored[column])}"
        if found is not None:
            return found
    return None


def _document(value: Any) -> Any:
    """A JSON document (or its text) parsed the way :func:`documents.loads` parses."""
    if isinstance(value, str):
        try:
            return documents.loads(value)
        except ValueError:
            return value
    return None if value is None else documents.loads(documents.dumps(value))


def _document_difference(path: str, expected: Any, stored: Any) -> str | None:
    """The first place where two parsed documents differ; decimals must have the same digits."""
    if isinstance(expected, dict) and isinstance(stored, dict):
        if expected.keys() != stored.keys():
            lacking, unexpected = sorted(expected.keys() - stored), sorted(stored.keys() - expected)
            return f"{path}: keys differ (missing {lacking}, unexpected {unexpected})"
        differences = (
            _document_difference(f"{path}.{k}", v, stored[k]) for k, v in expected.items()
        )
        return next((d for d in differences if d is not None), None)
    if isinstance(expected, list) and isinstance(stored, list):
        if len(expected) != len(stored):
            return f"{path}: {len(expected)} items expected, {len(stored)} stored"
        pairs = enumerate(zip(expected, stored, strict=True))
        differences = (_document_difference(f"{path}[{i}]", a, b) for i, (a, b) in pairs)
        return next((d for d in differences if d is not None), None)
    if type(expected) is type(stored) and str(expected) == str(stored) and expected == stored:
        return None
    return f"{path}: expected {_short(expected)}, stored {_short(stored)}"


def _same_value(expected: Any, stored: Any) -> bool:
    """Equal as stored in a column: numbers numerically, UUIDs as text, the rest with ``==``."""
    if expected is None or stored is None:
        return expected is stored
    numbers = (int, float, Decimal)
    if all(isinstance(v, numbers) and not isinstance(v, bool) for v in (expected, stored)):
        return Decimal(str(expected)) == Decimal(str(stored))
    if isinstance(expected, uuid.UUID) or isinstance(stored, uuid.UUID):
        return str(expected) == str(stored)
    return bool(expected == stored)


# -- output -------------------------------------------------------------------------------


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
    if value is None:
        text = "NULL"
    return text if len(text) <= width else text[: width - 3] + "..."
