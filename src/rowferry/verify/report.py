"""What :func:`rowferry.verify.check.verify` found: counts, and the first keys of each kind of
problem."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from rowferry import cursor

Key = cursor.Key
#: keys (and ranges, and rows) listed per kind of problem; all of them are counted
LISTED = 20


@dataclass
class Findings:
    """Keys with one kind of problem: every one counted, the first :data:`LISTED` kept."""

    count: int = 0
    keys: list[Key] = field(default_factory=list)

    def add(self, key: Key) -> None:
        self.count += 1
        if len(self.keys) < LISTED:
            self.keys.append(tuple(key))


@dataclass
class RangeMismatch:
    """A range whose checksums differ; ``first`` and ``last`` are its first and last source
    keys, ``differing`` the keys present on both sides whose rows differ."""

    first: Key
    last: Key
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str
    differing: Findings


@dataclass
class RowMismatch:
    """A root row whose stored target row is not what the transform gives."""

    key: Key
    difference: str


@dataclass
class VerifyReport:
    """What :func:`verify` found. ``ok`` is true when nothing differs."""

    migration: str
    source: str
    target: str
    source_table: str
    target_table: str
    key: list[str]
    source_key: list[str]
    mode: Literal["copy", "transform"]
    sample: str
    range_size: int
    qualifying: int = 0
    target_rows: int = 0
    quarantined: int = 0
    ranges: int = 0
    missing: Findings = field(default_factory=Findings)
    duplicate: Findings = field(default_factory=Findings)
    extra: Findings = field(default_factory=Findings)
    stored_and_quarantined: Findings = field(default_factory=Findings)
    ranges_differing: int = 0
    range_mismatches: list[RangeMismatch] = field(default_factory=list)
    rows_compared: int = 0
    rows_differing: int = 0
    row_mismatches: list[RowMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        kinds = (self.missing, self.duplicate, self.extra, self.stored_and_quarantined)
        return not any(f.count for f in kinds) and not self.ranges_differing + self.rows_differing

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = jsonable(dataclasses.asdict(self))
        return found | {"ok": self.ok}

    def add_range(self, mismatch: RangeMismatch) -> None:
        self.ranges_differing += 1
        if len(self.range_mismatches) < LISTED:
            self.range_mismatches.append(mismatch)

    def add_row(self, mismatch: RowMismatch) -> None:
        self.rows_differing += 1
        if len(self.row_mismatches) < LISTED:
            self.row_mismatches.append(mismatch)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return _plain(value)
