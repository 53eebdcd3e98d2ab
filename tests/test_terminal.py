"""The command line as a person meets it: in a real pseudo-terminal, where the progress bar is
drawn and Ctrl-C is a key, read from the screen the program leaves.

Every wait is generous (a loaded machine is slow) and nothing is timed: where a test needs a run
still going when it presses Ctrl-C, the migration's transform makes each chunk last seconds.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from rowferry import defaults

ROWS = 3000
#: rows of ``src`` whose ``v`` is NULL, which ``dst`` (``v NOT NULL``) rejects: quarantined
NULL_IDS = (7, 1234, 2999)
WAIT = 60  # seconds: the longest any step may take on a loaded machine
#: colours, cursor moves and line erasing: what the terminal acts on, not what it shows
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

SLOW_JOB = """\
import os, time
from rowferry import Migration

def slowly(row, related):
    time.sleep(float(os.environ["SECONDS_PER_ROW"]))
    return {"id": row["id"], "v": row["v"] or "-"}

migration = Migration(name="slow", source="src", target="dst", transform=slowly)
"""


def _rowferry() -> str:
    """The ``rowferry`` command installed beside this Python, as a person types it."""
    return str(Path(sys.executable).parent / "rowferry")


@dataclass
class Shop:
    """A SQLite database with ``src`` (3,000 rows) and an empty ``dst``, and migration files."""

    path: Path
    copy_job: Path
    slow_job: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def rows(self, table: str) -> int:
        with sqlite3.connect(self.path) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def state(self, name: str) -> tuple[str, int, str | None]:
        """The migration's stored status, rows read and error."""
        with sqlite3.connect(self.path) as conn:
            found = conn.execute(
                "SELECT status, rows_read, error FROM rowferry_state WHERE name = ?", (name,)
            ).fetchone()
        assert found is not None
        return found[0], found[1], found[2]


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE src (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("CREATE TABLE dst (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        rows = [(i, None if i in NULL_IDS else f"v{i}") for i in range(ROWS)]
        conn.executemany("INSERT INTO src VALUES (?, ?)", rows)
    copy_job = tmp_path / "copy_job.py"
    copy_job.write_text(
        "from rowferry import Migration\n"
        'migration = Migration(name="copy", source="src", target="dst")\n'
    )
    slow_job = tmp_path / "slow_job.py"
    slow_job.write_text(SLOW_JOB)
    return Shop(path, copy_job, slow_job)


@dataclass
class Screen:
    status: int
    text: str

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.text.splitlines()]


def _spawn(args: list[str], cwd: Path, seconds_per_row: float = 0.0) -> pexpect.spawn:
    env = dict(os.environ, SECONDS_PER_ROW=str(seconds_per_row), COLUMNS="120", LINES="30")
    return pexpect.spawn(
        _rowferry(),
        args,
        cwd=str(cwd),
        env=env,
        dimensions=(30, 120),
        encoding="utf-8",
        timeout=WAIT,
    )


def _finish(child: pexpect.spawn, before: str = "") -> Screen:
    """Read the rest of what the program prints until it exits; the whole screen's text."""
    text = before + child.read()
    child.close()
    status = child.exitstatus if child.exitstatus is not None else -1
    return Screen(status, _CONTROL.sub("", text.replace("\r\n", "\n")))


def _screen(args: list[str], cwd: Path) -> Screen:
    """Run ``rowferry ARGS`` in a 30x120 terminal to its end."""
    return _finish(_spawn(args, cwd))


def _plain(screen: Screen) -> None:
    assert "Traceback" not in screen.text, screen.text
    assert not [line for line in screen.lines() if line.strip() in ("Error:", "Error: ")]


@pytest.fixture
def slow_run(shop: Shop) -> Iterator[pexpect.spawn]:
    """``rowferry run`` of a migration whose chunks of 100 rows take 3 s each, once its first
    chunk is committed (the bar shows the total then): the second chunk has just begun."""
    args = ["run", str(shop.slow_job), "--source", shop.url, "--chunk-size", "100"]
    child = _spawn(args, shop.path.parent, seconds_per_row=0.03)
    child.expect(rf"100/{ROWS:,} rows")
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_run_in_a_terminal_draws_its_progress_and_eta_and_ends_done(shop: Shop) -> None:
    args = ["run", str(shop.slow_job), "--source", shop.url, "--chunk-size", "100"]
    screen = _finish(_spawn(args, shop.path.parent, seconds_per_row=0.0005))
    _plain(screen)
    assert screen.status == defaults.EXIT_DONE, screen.text
    assert "━" in screen.text and f"/{ROWS:,} rows" in screen.text  # the bar was drawn
    assert re.search(r"\b0:0\d:\d\d\b", screen.text), screen.text  # with the time left
    assert f"In all: {ROWS:,} of {ROWS:,} rows" in screen.text
    assert shop.rows("dst") == ROWS


def test_a_failed_run_in_a_terminal_says_why_once(shop: Shop) -> None:
    with sqlite3.connect(shop.path) as conn:
        conn.execute("CREATE TABLE never (id INTEGER PRIMARY KEY CHECK (id < 0), v TEXT)")
    job = shop.path.parent / "never_job.py"
    job.write_text(
        "from rowferry import Migration\n"
        'migration = Migration(name="never", source="src", target="never")\n'
    )
    screen = _screen(["run", str(job), "--source", shop.url], shop.path.parent)
    _plain(screen)
    assert screen.status == defaults.EXIT_FAILED, screen.text
    assert screen.text.count("rejected every row of the chunk") == 1, screen.text
    assert "(1,000 rows, id 0 to 999)" in screen.text and "after" not in screen.text


def test_one_ctrl_c_stops_the_run_after_the_current_chunk(
    shop: Shop, slow_run: pexpect.spawn
) -> None:
    slow_run.sendintr()
    screen = _finish(slow_run, slow_run.before + slow_run.after)
    _plain(screen)
    assert screen.status == defaults.EXIT_STOPPED, screen.text
    assert "slow: stopped, run again to continue (signal: SIGINT received)" in screen.text
    status, rows, error = shop.state("slow")
    assert (status, error) == ("stopped", None)
    assert rows >= 200 and rows % 100 == 0 and shop.rows("dst") == rows  # the chunk finished


def test_two_ctrl_c_stop_the_run_at_once_and_say_so(shop: Shop, slow_run: pexpect.spawn) -> None:
    slow_run.sendintr()
    slow_run.expect(pexpect.TIMEOUT, timeout=0.3)  # let the first one be handled
    slow_run.sendintr()
    screen = _finish(slow_run, slow_run.before)
    _plain(screen)
    assert screen.status == defaults.EXIT_STOPPED, screen.text
    said = "slow: stopped at once by a second signal (SIGINT); the open chunk was rolled back"
    assert said in screen.text and "run again to continue" in screen.text
    assert "Aborted" not in screen.text
    status, rows, error = shop.state("slow")
    assert status == "stopped" and error == "stopped at once by a second signal (SIGINT)"
    assert rows % 100 == 0 and rows == shop.rows("dst")  # the open chunk left nothing


def test_plan_in_a_terminal_shows_the_first_chunk_from_the_start(shop: Shop) -> None:
    screen = _screen(["plan", str(shop.copy_job), "--source", shop.url], shop.path.parent)
    _plain(screen)
    assert screen.status == defaults.EXIT_DONE, screen.text
    assert f"qualifying rows: {ROWS:,}; done: 0; left: {ROWS:,} = 3 chunks of 1,000" in screen.text
    assert "1. root rows of the first chunk (from the start" in screen.text
    assert "FROM src ORDER BY src.id LIMIT 1000" in screen.text
    assert shop.rows("dst") == 0


def test_status_in_a_terminal_is_a_table_with_counts_aligned_right(shop: Shop) -> None:
    args = ["run", str(shop.copy_job), "--source", shop.url, "--chunk-size", "500"]
    assert _screen([*args, "--max-chunks", "1"], shop.path.parent).status == 3
    screen = _screen(["status", "--source", shop.url], shop.path.parent)
    _plain(screen)
    assert screen.status == defaults.EXIT_DONE, screen.text
    header = next(line for line in screen.lines() if "rows done" in line)
    row = next(line for line in screen.lines() if line.strip().startswith("copy"))
    for column, value in (("rows done", "500"), ("rows left", "2,500"), ("trips", "1")):
        end = header.index(column) + len(column)
        assert row[end - len(value) : end] == value, (header, row)
    assert "stopped" in row


def test_verify_and_quarantine_in_a_terminal(shop: Shop) -> None:
    run = _screen(["run", str(shop.copy_job), "--source", shop.url], shop.path.parent)
    assert run.status == defaults.EXIT_DONE, run.text
    verify = _screen(["verify", str(shop.copy_job), "--source", shop.url], shop.path.parent)
    _plain(verify)
    assert verify.status == defaults.EXIT_DONE, verify.text
    assert "OK: the target matches the source" in verify.text
    listed = _screen(["quarantine", "copy", "--source", shop.url], shop.path.parent)
    _plain(listed)
    assert listed.status == defaults.EXIT_DONE, listed.text
    assert "copy: 3 quarantined rows, first 50:" in listed.text
    for key in NULL_IDS:
        assert f"- key [{key}] (1 attempt, " in listed.text
    unknown = _screen(["quarantine", "cpy", "--source", shop.url], shop.path.parent)
    assert unknown.status == defaults.EXIT_CONFIG
    assert "Error: no migration named 'cpy'" in unknown.text and "'copy'" in unknown.text


def test_reset_asks_and_does_nothing_on_no(shop: Shop) -> None:
    args = ["run", str(shop.copy_job), "--source", shop.url, "--max-chunks", "1"]
    assert _screen(args, shop.path.parent).status == defaults.EXIT_STOPPED
    child = _spawn(["reset", "copy", "--source", shop.url], shop.path.parent)
    child.expect_exact("Forget all progress of migration 'copy'? [y/N]: ")
    child.sendline("n")
    screen = _finish(child)
    assert screen.status == defaults.EXIT_DONE and "copy: nothing changed" in screen.text
    assert "Aborted" not in screen.text, screen.text
    assert shop.state("copy")[1] == 1000

    child = _spawn(["reset", "copy", "--source", shop.url], shop.path.parent)
    child.expect_exact("[y/N]: ")
    child.sendline("y")
    screen = _finish(child)
    _plain(screen)
    assert screen.status == defaults.EXIT_DONE and "copy: progress forgotten" in screen.text
    status = _screen(["status", "--source", shop.url, "--json"], shop.path.parent)
    assert json.loads(status.text) == []


def test_demo_in_a_terminal_ends_with_its_check(tmp_path: Path) -> None:
    screen = _screen(["demo", "--orders", "300"], tmp_path)
    _plain(screen)
    assert screen.status == 0, screen.text
    assert "trip 1:" in screen.text and "snapshots in" in screen.text
    assert "check: every finished order has exactly one snapshot" in screen.text
