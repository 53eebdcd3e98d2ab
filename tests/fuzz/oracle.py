"""Running one case through rowferry, and judging it with the drivers' own reads of both sides.

The verdict is ``exact`` (every qualifying row in the target once or listed in the quarantine
with a reason, every value equal after the kind's documented conversion), ``refused`` (a
configuration error before anything was written, whose message is returned), or a failure with
what went wrong.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

import rowferry
from rowferry import Budget, ConfigError, Migration, RowferryError, Target
from rowferry.chunks import failpoints
from rowferry.dialects.connect import create_engine

from .cases import Case
from .databases import Database, Databases
from .kinds import Kind, documented, target_type

MAX_TRIPS = 80


class Crash(BaseException):
    """The process 'dies' at a failpoint: nothing after it runs, nothing uncommitted stays."""


@dataclass
class Verdict:
    outcome: str  # exact, refused, failed
    detail: str = ""
    rows: int = 0
    crashes: int = 0
    trips: int = 0


class Runner:
    """Runs cases against one set of databases, keeping one engine per database."""

    def __init__(self, databases: Databases) -> None:
        self.dbs = databases
        self.engines: dict[str, sa.Engine] = {}

    def engine(self, db: Database) -> sa.Engine:
        if db.dialect not in self.engines:
            self.engines[db.dialect] = create_engine(db.url)
        return self.engines[db.dialect]

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()

    def run(self, case: Case) -> Verdict:
        src, dst = self.dbs.by_dialect[case.source], self.dbs.by_dialect[case.target]
        try:
            _create(case, src, dst)
            return self._judge(case, src, dst)
        finally:
            _drop(case, src, dst)

    def _judge(self, case: Case, src: Database, dst: Database) -> Verdict:
        migration = _migration(case)
        verdict = Verdict("exact")
        source, target = self.engine(src), self.engine(dst)
        budget = Budget(max_chunks=case.max_chunks, max_bad_rows=10**9)
        crash = case.crash
        for _ in range(MAX_TRIPS):
            verdict.trips += 1
            try:
                with _crashing(crash):
                    result = rowferry.run(
                        migration,
                        source,
                        None if case.same else target,
                        budget=budget,
                        chunk_size=case.chunk_size,
                    )
            except Crash:
                verdict.crashes += 1
                crash = None
                _expire_lease(case, dst)  # the dead run's lease runs out
                continue
            except ConfigError as exc:
                return _refused(case, dst, str(exc))
            except RowferryError as exc:
                return Verdict("failed", f"{type(exc).__name__}: {exc}")
            if result.done:
                break
        else:
            return Verdict("failed", f"not done after {MAX_TRIPS} trips")
        return _compare(case, src, dst, verdict)


def _expire_lease(case: Case, dst: Database) -> None:
    dst.execute(
        f"UPDATE rowferry_state SET lease_until = {dst.mark} WHERE name = {dst.mark}",
        (dt.datetime(2000, 1, 1), case.name),
    )


def _migration(case: Case) -> Migration:
    key = [n for n, _ in case.key]
    target = Target(f"{case.name}_dst", unique_key=key if case.unique_target else None)
    return Migration(
        name=case.name,
        source=f"{case.name}_src",
        target=target,
        key=key,
        where=case.where,
        params=case.params,
        transform=_identity if case.transform else None,
        pushdown=case.pushdown,
    )


def _identity(row: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
    return dict(row)


@contextmanager
def _crashing(crash: tuple[str, int] | None) -> Iterator[None]:
    if crash is None:
        yield
        return
    point, hit = crash
    seen = 0
    reached = failpoints.reached

    def crash_at(name: str) -> None:
        nonlocal seen
        if name == point:
            seen += 1
            if seen == hit:
                raise Crash(point)

    failpoints.reached = crash_at
    try:
        yield
    finally:
        failpoints.reached = reached


def _create(case: Case, src: Database, dst: Database) -> None:
    key = ", ".join(n for n, _ in case.key)
    cols = ", ".join(f"{n} {k.ddl[case.source]}{_not_null(case, n)}" for n, k in case.all_columns)
    src.execute(f"CREATE TABLE {case.name}_src ({cols}, PRIMARY KEY ({key}))")
    marks = ", ".join(src.mark for _ in case.all_columns)
    insert = f"INSERT INTO {case.name}_src VALUES ({marks})"
    for row in case.rows:  # one by one: a row the source refuses (a key it holds) is left out
        try:
            src.execute(insert, row)
        except Exception:
            if src.dialect == "postgresql":
                src.raw.rollback()
    dst_cols = ", ".join(
        f"{n} {target_type(k, case.target)}{_not_null(case, n)}" for n, k in case.all_columns
    )
    primary = f", PRIMARY KEY ({key})" if case.unique_target else ""
    dst.execute(f"CREATE TABLE {case.name}_dst ({dst_cols}{primary})")


def _not_null(case: Case, name: str) -> str:
    return " NOT NULL" if name in {n for n, _ in case.key} else ""


def _drop(case: Case, src: Database, dst: Database) -> None:
    for db, table in ((src, f"{case.name}_src"), (dst, f"{case.name}_dst")):
        db.execute(f"DROP TABLE IF EXISTS {table}")


def _refused(case: Case, dst: Database, message: str) -> Verdict:
    written = dst.query(f"SELECT COUNT(*) FROM {case.name}_dst")[0][0]
    held = _quarantined(case, dst)
    if written or held:
        return Verdict("failed", f"refused after writing {written} rows: {message}")
    return Verdict("refused", message)


def _selected(db: Database, columns: list[tuple[str, Kind]]) -> str:
    return ", ".join(k.select.get(db.dialect, "{c}").format(c=n) for n, k in columns)


def _canon_row(columns: list[tuple[str, Kind]], row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if v is None else k.canon(v) for (_, k), v in zip(columns, row, strict=True))


def _compare(case: Case, src: Database, dst: Database, verdict: Verdict) -> Verdict:
    columns = case.all_columns
    width = len(case.key)
    where = f" WHERE ({case.oracle_where})" if case.oracle_where else ""
    source = src.query(f"SELECT {_selected(src, columns)} FROM {case.name}_src{where}")
    wanted = {row[:width]: _as_held(case, row) for row in (_canon_row(columns, r) for r in source)}
    target = dst.query(f"SELECT {_selected(dst, columns)} FROM {case.name}_dst")
    got = [_canon_row(columns, r) for r in target]
    held = _quarantined(case, dst)
    problems: list[str] = []
    counts = Counter(row[:width] for row in got)
    problems += [f"key {k!r} written {n} times" for k, n in counts.items() if n > 1]
    for row in got:
        expected = wanted.get(row[:width])
        if expected is None:
            problems.append(f"key {row[:width]!r} written but does not qualify")
        elif expected != row:
            diff = [
                f"{name}: {a!r} -> {b!r}"
                for (name, _), a, b in zip(columns, expected, row, strict=True)
                if a != b
            ]
            problems.append(f"key {row[:width]!r} changed: {'; '.join(diff)}")
    quarantined = {_canon_key(case, k): reason for k, reason in held}
    for key, reason in quarantined.items():
        if key not in wanted:
            problems.append(f"quarantined key {key!r} does not qualify")
        if not reason.strip():
            problems.append(f"quarantined key {key!r} has no reason")
        if key in counts:
            problems.append(f"key {key!r} both written and quarantined")
    missing = [k for k in wanted if k not in counts and k not in quarantined]
    problems += [f"key {k!r} qualifies but is missing" for k in missing]
    verdict.rows = len(wanted)
    if problems:
        return Verdict("failed", "\n".join(problems[:12]), verdict.rows, verdict.crashes)
    return verdict


def _as_held(case: Case, row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        documented(k, case.target, v) for (_, k), v in zip(case.all_columns, row, strict=True)
    )


def _quarantined(case: Case, dst: Database) -> list[tuple[str, str]]:
    try:
        return dst.query(
            f"SELECT key_json, reason FROM rowferry_quarantine WHERE migration = {dst.mark}",
            (case.name,),
        )
    except Exception:
        if dst.dialect == "postgresql":
            dst.raw.rollback()
        return []


_TAGS: dict[str, Any] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "decimal": Decimal,
    "uuid": uuid.UUID,
    "bytes": base64.b64decode,
    "float": float.fromhex,
}


def _canon_key(case: Case, text: str) -> tuple[Any, ...]:
    values = []
    for (_, kind), value in zip(case.key, json.loads(text), strict=True):
        if isinstance(value, dict):
            ((tag, raw),) = value.items()
            value = _TAGS[tag](raw)
        values.append(kind.canon(value))
    return tuple(values)
