"""Measuring one child process, and checking what it copied; used by ``bench.copy``.

Peak memory is the larger of two readings. First, GNU time's ``%M``: ``/usr/bin/time`` forks and
execs the command and reports the ``ru_maxrss`` that ``wait4`` gives for it (Linux: the maximum
over the process and the descendants it waited for, not their sum). ``os.wait4`` straight on our
own child would not do: the kernel carries the high-water mark of the memory a process had
before ``exec`` into its ``ru_maxrss``, and a child forked from this (large) Python process
starts with a copy of it; a child forked by the small ``time`` process does not. Second, the
largest sum of the resident set sizes of all live descendants of ``time``, sampled every 20 ms
from ``/proc``, which catches helper processes that run at the same time as the command.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

COLUMNS = ("id", "patient_id", "status", "total", "notes", "created_at", "updated_at")
SAMPLE_SIZE = 200
POLL_SECONDS = 0.02
TIME = "/usr/bin/time"  # GNU time (Debian package "time")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class Measured:
    returncode: int
    wall: float
    peak_kb: int
    stdout: str
    stderr: str


class TreePoller(threading.Thread):
    """Samples the summed RSS of the descendants of a process until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(POLL_SECONDS):
            descendants = _tree(self.pid)[1:]
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(p) for p in descendants))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in children.read_text().split())
            except OSError:
                continue
    return found


def _rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def run_measured(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` to the end: its wall time, peak memory (see the module doc) and output."""
    with tempfile.TemporaryDirectory(prefix="rfcopy-measure-") as tmp:
        out, err, rss = (Path(tmp) / name for name in ("out", "err", "maxrss"))
        timed = [TIME, "-f", "%M", "-o", str(rss), *cmd]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            started = time.perf_counter()
            proc = subprocess.Popen(timed, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
            poller = TreePoller(proc.pid)
            poller.start()
            returncode = proc.wait()
            wall = time.perf_counter() - started
            poller.stop()
        maxrss = rss.read_text().split()
        return Measured(
            returncode=returncode,
            wall=wall,
            peak_kb=max(int(maxrss[-1]) if maxrss else 0, poller.peak_kb),
            stdout=out.read_text(errors="replace"),
            stderr=err.read_text(errors="replace"),
        )


# ------------------------------------------------------------------------------------------
# Correctness
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFacts:
    """The qualifying ids of the source, and ~200 evenly spread rows to compare field by field."""

    ids: frozenset[int]
    sample: dict[int, tuple[Any, ...]]


def _value(value: Any) -> Any:
    """Comparable form: aware datetimes in naive UTC; decimals compared by exact value."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, float):  # a decimal that came back as a float is not exact
        return f"float {value!r}"
    return value


def _rows(conn: sa.Connection, table: str, ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    stmt = sa.text(f"SELECT {', '.join(COLUMNS)} FROM {table} WHERE id IN :ids").bindparams(
        sa.bindparam("ids", list(ids), expanding=True)
    )
    return {int(r[0]): tuple(_value(v) for v in r) for r in conn.execute(stmt)}


def source_facts(url: str, statuses: Sequence[str]) -> SourceFacts:
    engine = sa.create_engine(url)
    stmt = sa.text("SELECT id FROM orders WHERE status IN :s ORDER BY id").bindparams(
        sa.bindparam("s", list(statuses), expanding=True)
    )
    try:
        with engine.connect() as conn:
            ids = [int(r[0]) for r in conn.execute(stmt)]
            step = max(1, len(ids) // SAMPLE_SIZE)
            sample = _rows(conn, "orders", ids[::step][:SAMPLE_SIZE])
    finally:
        engine.dispose()
    return SourceFacts(frozenset(ids), sample)


def check(url: str, table: str, facts: SourceFacts) -> str:
    """``yes``, or what is wrong: count, duplicates, missing/extra ids, differing sample rows."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            got = [int(r[0]) for r in conn.execute(sa.text(f"SELECT id FROM {table}"))]
            rows = _rows(conn, table, facts.sample)
    finally:
        engine.dispose()
    unique = set(got)
    problems = []
    if len(got) != len(facts.ids):
        problems.append(f"{len(got):,} rows, expected {len(facts.ids):,}")
    if len(got) != len(unique):
        problems.append(f"{len(got) - len(unique):,} duplicate ids")
    if unique != facts.ids:
        missing, extra = len(facts.ids - unique), len(unique - facts.ids)
        problems.append(f"{missing:,} ids missing, {extra:,} not qualifying")
    problems += _sample_problems(rows, facts.sample)
    return "yes" if not problems else "NO: " + "; ".join(problems)


def _sample_problems(
    rows: dict[int, tuple[Any, ...]], sample: dict[int, tuple[Any, ...]]
) -> list[str]:
    differ = [key for key, row in sample.items() if not _same(rows.get(key), row)]
    if not differ:
        return []
    key = differ[0]
    got, want = rows.get(key), sample[key]
    detail = "absent" if got is None else _first_difference(got, want)
    return [f"{len(differ)} of {len(sample)} sample rows differ (id {key}: {detail})"]


def _same(got: tuple[Any, ...] | None, want: tuple[Any, ...]) -> bool:
    if got is None or len(got) != len(want):
        return False
    return all(_equal(g, w) for g, w in zip(got, want, strict=True))


def _equal(got: Any, want: Any) -> bool:
    if isinstance(want, Decimal):
        return isinstance(got, Decimal) and got == want
    return type(got) is type(want) and got == want


def _first_difference(got: tuple[Any, ...], want: tuple[Any, ...]) -> str:
    for name, g, w in zip(COLUMNS, got, want, strict=True):
        if not _equal(g, w):
            return f"{name} {g!r} instead of {w!r}"
    return "?"
