"""The central test: kill ``rowferry run`` (SIGKILL) at many instants, resume each time, and the
target ends equal to one uninterrupted run, row for row; after every kill the rows in the target
are exactly the rows the committed checkpoint accounts for.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

import rowferry
from harness import reference
from rowferry.chunks import failpoints
from rowferry.demo import order_history
from rowferry.state import store

MIGRATION_FILE = order_history.__file__
CHUNK = "40"


def _start(url: str, failpoint: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "ROWFERRY_FAILPOINTS"}
    if failpoint:
        env["ROWFERRY_FAILPOINTS"] = failpoint
    cmd = [
        sys.executable,
        "-m",
        "rowferry",
        "run",
        MIGRATION_FILE,
        "--source",
        url,
        "--chunk-size",
        CHUNK,
        "--quiet",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _committed(url: str) -> tuple[int, int]:
    """(snapshots in the target, rows the committed checkpoint says were written)."""
    # one snapshot for both reads: a run killed just after sending COMMIT is committed by the
    # server a moment later, and two separate reads could see the checkpoint without its rows
    isolation = "SERIALIZABLE" if url.startswith("sqlite") else "REPEATABLE READ"
    engine = sa.create_engine(url, isolation_level=isolation)
    with engine.connect() as conn:
        count = conn.exec_driver_sql("SELECT COUNT(*) FROM order_snapshots").scalar_one()
        saved = (
            store.read(conn, order_history.migration.name)
            if sa.inspect(conn).has_table(store.STATE_TABLE)
            else None
        )
    engine.dispose()
    return int(count), 0 if saved is None else saved.rows_written


def _finish(url: str) -> None:
    proc = _start(url)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()  # type: ignore[union-attr]


def _kill_at_failpoints(url: str) -> int:
    """Kill at each point of the chunk loop, in the first and second chunk of a process."""
    kills = 0
    for point in failpoints.POINTS:
        for nth in (1, 2):
            proc = _start(url, f"{point}={nth}")
            assert proc.wait(timeout=120) == -signal.SIGKILL, proc.stderr.read()  # type: ignore[union-attr]
            kills += 1
            written, accounted = _committed(url)
            assert written == accounted, (
                f"kill at {point}: {written} rows, {accounted} checkpointed"
            )
    return kills


def _kill_at_random(url: str, kills: int, window: float, expected: dict[int, object]) -> int:
    """SIGKILL runs at random instants; each time a run completes, check it and start over."""
    rng = random.Random(20261126)
    mid_run = 0
    for _ in range(kills * 4):
        before, _checkpointed = _committed(url)
        proc = _start(url)
        time.sleep(rng.uniform(0.2, window))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        if proc.wait(timeout=60) == 0:
            assert reference.snapshots(url) == expected
            reference.start_over(url)
            continue
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()  # type: ignore[union-attr]
        written, accounted = _committed(url)
        assert written == accounted
        mid_run += int(written != before)
        kills -= 1
        if kills == 0:
            break
    assert kills == 0
    return mid_run


def test_killed_at_any_instant_and_resumed_equals_one_uninterrupted_run(db_url: str) -> None:
    reference.build(db_url, orders=3000)
    assert rowferry.run(order_history.migration, db_url, chunk_size=int(CHUNK)).done
    uninterrupted = reference.snapshots(db_url)
    assert uninterrupted == reference.expected_snapshots(db_url)
    reference.start_over(db_url)

    started = time.monotonic()
    _finish(db_url)
    window = time.monotonic() - started
    assert reference.snapshots(db_url) == uninterrupted
    reference.start_over(db_url)

    assert _kill_at_failpoints(db_url) == 8
    _finish(db_url)
    assert reference.snapshots(db_url) == uninterrupted
    reference.start_over(db_url)

    mid_run = _kill_at_random(db_url, kills=16, window=window, expected=uninterrupted)
    assert mid_run >= 4
    _finish(db_url)
    assert reference.snapshots(db_url) == uninterrupted


def test_failpoints_are_known_by_name(tmp_path: Path) -> None:
    env = dict(os.environ, ROWFERRY_FAILPOINTS="no_such_point=1")
    proc = subprocess.run(
        [sys.executable, "-c", "import rowferry.chunks.failpoints"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "unknown failpoint 'no_such_point'" in proc.stderr
