"""The ``rowferry`` command: exit statuses, messages, status, plan, reset and the demo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from rowferry import defaults, state
from rowferry.cli import main
from rowferry.demo import order_history
from tests import reference

MIGRATION_FILE = order_history.__file__


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_run_exits_0_when_done_and_3_when_stopped_by_the_budget(db_url: str) -> None:
    stats = reference.build(db_url, orders=200)
    stopped = invoke(
        "run", MIGRATION_FILE, "--source", db_url, "--chunk-size", "20", "--max-chunks", "2"
    )
    assert stopped.exit_code == defaults.EXIT_STOPPED, stopped.output
    assert "stopped, run again to continue (chunk limit: 2 chunks done)" in stopped.output
    no_time = invoke("run", MIGRATION_FILE, "--source", db_url, "--time-budget", "1ms")
    assert no_time.exit_code == defaults.EXIT_STOPPED and "(time budget:" in no_time.output
    done = invoke("run", MIGRATION_FILE, "--source", db_url, "--json")
    assert done.exit_code == defaults.EXIT_DONE, done.output
    result = json.loads(done.output)
    assert result["done"] and result["rows_done"] == stats.qualifying


def test_status_shows_every_migration_with_progress_and_errors(db_url: str) -> None:
    stats = reference.build(db_url, orders=200)
    invoke("run", MIGRATION_FILE, "--source", db_url, "--chunk-size", "20", "--max-chunks", "1")
    text = invoke("status", "--target", db_url)
    assert text.exit_code == 0
    assert "order-history" in text.output and "stopped-by-budget" in text.output
    rows = json.loads(invoke("status", "--target", db_url, "--json").output)
    assert rows[0]["rows_read"] == 20 and rows[0]["rows_left"] == stats.qualifying - 20
    assert rows[0]["state"] == "stopped-by-budget" and rows[0]["chunks"] == 1


def test_status_of_a_database_without_migrations(db_url: str) -> None:
    sa.create_engine(db_url).connect().close()  # an empty database (SQLite: creates the file)
    result = invoke("status", "--target", db_url)
    assert result.exit_code == 0 and "no migrations recorded" in result.output


def test_a_failed_run_exits_1_and_status_shows_the_error(db_url: str, tmp_path: Path) -> None:
    reference.build(db_url, orders=60)
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from rowferry import Migration, Target\n"
        "def boom(row, related):\n    raise KeyError('dosage')\n"
        "migration = Migration(name='broken', source='orders', transform=boom,\n"
        "    target=Target('order_snapshots', unique_key=['order_id']))\n"
    )
    result = invoke("run", str(broken), "--source", db_url, "--max-bad-rows", "3")
    assert result.exit_code == defaults.EXIT_FAILED
    assert "rows quarantined in this run, more than max_bad_rows=3" in result.output
    rows = json.loads(invoke("status", "--target", db_url, "--json").output)
    assert rows[0]["state"] == "failed" and "max_bad_rows" in rows[0]["error"]


def test_bad_input_exits_2_with_one_line_and_no_password(db_url: str) -> None:
    url = "mysql+pymysql://root:hunter2-secret@127.0.0.1:1/test"
    result = invoke("run", MIGRATION_FILE, "--source", url)
    assert result.exit_code == defaults.EXIT_CONFIG
    assert "hunter2-secret" not in result.output and "root:***@127.0.0.1:1" in result.output
    missing = invoke("run", "no_such_file.py", "--source", db_url)
    assert missing.exit_code == defaults.EXIT_CONFIG and "does not exist" in missing.output
    bad_budget = invoke("run", MIGRATION_FILE, "--source", db_url, "--time-budget", "soon")
    assert bad_budget.exit_code == 2 and "not a duration" in bad_budget.output


def test_plan_counts_shows_sql_and_explain_and_writes_nothing(db_url: str) -> None:
    stats = reference.build(db_url, orders=300)
    result = invoke("plan", MIGRATION_FILE, "--source", db_url, "--chunk-size", "50")
    assert result.exit_code == 0, result.output
    assert f"qualifying rows: {stats.qualifying:,}" in result.output
    assert f"= {-(-stats.qualifying // 50)} chunks of 50" in result.output
    assert "ORDER BY orders.id" in result.output and "EXPLAIN" in result.output
    lookup = "= ANY (ARRAY[" if "postgresql" in db_url else "IN ("
    assert f"WHERE order_items.order_id {lookup}" in result.output
    assert "OFFSET" not in result.output and "LIMIT 50" in result.output
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table(state.STATE_TABLE)
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM order_snapshots").scalar() == 0
    engine.dispose()


def test_plan_warns_when_a_relation_has_no_index(db_url: str, tmp_path: Path) -> None:
    reference.build(db_url, orders=50)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE order_notes (id INTEGER PRIMARY KEY, order_id INTEGER)")
    engine.dispose()
    spec = tmp_path / "noindex.py"
    spec.write_text(
        "from rowferry import HasMany, Migration, Target\n"
        "migration = Migration(name='n', source='orders',\n"
        "    relations={'notes': HasMany('order_notes', foreign_key='order_id')},\n"
        "    transform=lambda o, r: {'order_id': o['id'], 'status': o['status'], 'snapshot': r},\n"
        "    target=Target('order_snapshots', unique_key=['order_id']))\n"
    )
    result = invoke("plan", str(spec), "--source", db_url)
    assert result.exit_code == 0, result.output
    assert "no index on order_notes(order_id)" in result.output


def test_reset_asks_first_and_forgets_progress(db_url: str) -> None:
    reference.build(db_url, orders=100)
    invoke("run", MIGRATION_FILE, "--source", db_url, "--chunk-size", "10", "--max-chunks", "1")
    refused = invoke("reset", "order-history", "--target", db_url, input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert json.loads(invoke("status", "--target", db_url, "--json").output)
    done = invoke("reset", "order-history", "--target", db_url, "--yes")
    assert done.exit_code == 0 and "progress forgotten" in done.output
    assert json.loads(invoke("status", "--target", db_url, "--json").output) == []


def test_demo_on_a_server(db_url: str) -> None:
    result = invoke("demo", "--url", db_url, "--orders", "400")
    assert result.exit_code == 0, result.output
    assert "check: every finished order has exactly one snapshot" in result.output
    assert "wrote 239 snapshots in" in result.output
    assert "transform re-run on 239 rows (every qualifying row): 0 differ" in result.output
    assert "missing keys (qualifying, not stored, not quarantined): 0" in result.output


@pytest.mark.parametrize("dialect_name", ["sqlite"])
def test_demo_stops_with_advice_when_its_trips_are_too_short_to_commit(db_url: str) -> None:
    result = invoke("demo", "--url", db_url, "--orders", "50", "--trip-budget", "0.001ms")
    assert result.exit_code == defaults.EXIT_CONFIG, result.output
    assert "3 trips of 1e-06 s in a row committed nothing" in result.output
    assert "larger --trip-budget" in result.output


@pytest.mark.parametrize("dialect_name", ["sqlite"])
def test_demo_with_no_arguments_writes_1615_snapshots_in_several_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dialect_name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    assert "built 2,700 orders (1,615 finished)" in result.output
    assert "wrote 1,615 snapshots in" in result.output
    assert "trip 2:" in result.output
    assert "verify --all (" in result.output and "1,615 qualifying rows" in result.output
    assert os.path.exists(tmp_path / "rowferry-demo.sqlite")


def test_every_command_explains_itself_and_the_exit_statuses() -> None:
    for command in ([], ["run"], ["status"], ["plan"], ["reset"], ["demo"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0
        assert "Exit statuses" in result.output and "stopped by the time budget" in result.output


def test_sigterm_asks_for_a_warm_stop_after_the_current_chunk(db_url: str, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    stats = reference.build(db_url, orders=300)
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import time\n"
        "from rowferry.demo.order_history import migration as m, snapshot\n"
        "from dataclasses import replace\n"
        "def slowly(order, related):\n    time.sleep(0.01)\n    return snapshot(order, related)\n"
        "migration = replace(m, transform=slowly)\n"
    )
    cmd = [
        sys.executable,
        "-m",
        "rowferry",
        "run",
        str(slow),
        "--source",
        db_url,
        "--chunk-size",
        "10",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and not _rows_done(db_url):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == defaults.EXIT_STOPPED, err
    assert "signal: SIGTERM received" in out
    done = _rows_done(db_url)
    assert 0 < done < stats.qualifying and done % 10 == 0


def _rows_done(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(state.STATE_TABLE):
                return 0
            found = state.read(conn, "order-history")
            return 0 if found is None else found.rows_read
    finally:
        engine.dispose()
