"""The command line as a person meets it: in a real pseudo-terminal, where the progress bar is
drawn, read from the screen the program leaves."""

from __future__ import annotations

import re
import sqlite3
import sys
from pathlib import Path

import pexpect

ROWS = 3000
#: colours, cursor moves and line erasing: what the terminal acts on, not what it shows
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _screen(command: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``command`` in a 30x120 terminal; its exit status and everything it printed."""
    child = pexpect.spawn(
        command[0], command[1:], cwd=str(cwd), dimensions=(30, 120), encoding="utf-8", timeout=120
    )
    text = _CONTROL.sub("", child.read())
    child.close()
    return child.exitstatus if child.exitstatus is not None else -1, text


def _copy_job(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE src (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("CREATE TABLE dst (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO src VALUES (?, ?)", [(i, f"v{i}") for i in range(ROWS)])
    migration = tmp_path / "copy_job.py"
    migration.write_text(
        "from rowferry import Migration\n"
        'migration = Migration(name="copy", source="src", target="dst")\n'
    )
    return f"sqlite:///{path}", migration


def _rowferry(*args: str) -> list[str]:
    """The ``rowferry`` command installed beside this Python, as a person types it."""
    return [str(Path(sys.executable).parent / "rowferry"), *args]


def test_run_in_a_terminal_draws_its_progress_and_ends_done(tmp_path: Path) -> None:
    url, migration = _copy_job(tmp_path)
    status, screen = _screen(
        _rowferry("run", str(migration), "--source", url, "--chunk-size", "50"), tmp_path
    )
    assert "Traceback" not in screen, screen
    assert status == 0, screen
    assert "━" in screen and " rows" in screen  # the progress bar was drawn
    assert f"In all: {ROWS:,} of {ROWS:,} rows" in screen
    with sqlite3.connect(tmp_path / "shop.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM dst").fetchone() == (ROWS,)


def test_demo_in_a_terminal_ends_with_its_check(tmp_path: Path) -> None:
    status, screen = _screen(_rowferry("demo", "--orders", "300"), tmp_path)
    assert "Traceback" not in screen, screen
    assert status == 0, screen
    assert "trip 1:" in screen
