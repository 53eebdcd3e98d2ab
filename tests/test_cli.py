"""The ``rowferry`` command: exit statuses, messages, status, plan, reset and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from harness import reference
from rowferry import defaults
from rowferry.cli.main import main
from rowferry.demo import order_history
from rowferry.state import store as state

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
    assert "order-history" in text.output and "stopped" in text.output
    rows = json.loads(invoke("status", "--target", db_url, "--json").output)
    assert rows[0]["rows_read"] == 20 and rows[0]["rows_left"] == stats.qualifying - 20
    assert rows[0]["state"] == "stopped" and rows[0]["chunks"] == 1


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
    assert refused.exit_code == 0 and "order-history: nothing changed" in refused.output
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


ROWFERRY = str(Path(sys.executable).parent / "rowferry")
SQLITE_ONLY = pytest.mark.parametrize("dialect_name", ["sqlite"])


def _broken_migration(tmp_path: Path) -> Path:
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from rowferry import Migration, Target\n"
        "def boom(row, related):\n    raise KeyError('dosage')\n"
        "migration = Migration(name='broken', source='orders', transform=boom,\n"
        "    target=Target('order_snapshots', unique_key=['order_id']))\n"
    )
    return broken


@SQLITE_ONLY
def test_a_failed_run_prints_its_error_once(db_url: str, tmp_path: Path) -> None:
    """In a process of its own, where no test harness has configured logging: the library's
    log record of the failure must not be printed beside the error that reports it."""
    reference.build(db_url, orders=60)
    broken = _broken_migration(tmp_path)
    command = [ROWFERRY, "run", str(broken), "--source", db_url, "--max-bad-rows", "3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == defaults.EXIT_FAILED
    assert done.stdout == ""
    assert done.stderr.count("more than max_bad_rows=3") == 1, done.stderr
    assert done.stderr.startswith("Error: migration 'broken': ")
    assert "trip failed" not in done.stderr


def test_a_missing_parameter_names_the_line_of_the_migration_file(tmp_path: Path) -> None:
    spec = tmp_path / "needs_low.py"
    spec.write_text(
        "from rowferry import Migration\n\n"
        "migration = Migration(name='p', source='src', target='dst', where='id > :low')\n"
    )
    result = invoke("run", str(spec), "--source", f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert result.exit_code == defaults.EXIT_CONFIG
    assert f"{spec}: line 3: migration 'p': where uses :low" in result.output
    assert "add params={'low': ...} to the Migration" in result.output
    assert "spec.py" not in result.output and "ConfigError" not in result.output


def test_the_next_chunk_is_planned_from_the_start_until_a_chunk_is_committed(db_url: str) -> None:
    stats = reference.build(db_url, orders=300)
    text = invoke("plan", MIGRATION_FILE, "--source", db_url, "--chunk-size", "500")
    assert f"left: {stats.qualifying:,} = 1 chunk of 500" in text.output
    first = json.loads(invoke("plan", MIGRATION_FILE, "--source", db_url, "--json").output)
    assert "root rows of the first chunk (from the start" in first["queries"][0]["title"]
    assert "orders.id >" not in first["queries"][0]["sql"]
    invoke("run", MIGRATION_FILE, "--source", db_url, "--chunk-size", "20", "--max-chunks", "1")
    last = _committed_key(db_url)
    later = json.loads(invoke("plan", MIGRATION_FILE, "--source", db_url, "--json").output)
    assert f"the next chunk (after the committed id {last})" in later["queries"][0]["title"]
    assert f"orders.id > {last}" in later["queries"][0]["sql"]


def test_plan_shows_a_pushed_down_chunk_s_select_once(db_url: str) -> None:
    reference.build(db_url, orders=100)
    args = ["plan", MIGRATION_FILE, "--source", db_url, "--name", "order-history-pushdown"]
    report = json.loads(invoke(*args, "--json").output)
    select = report["queries"][-1]["sql"]
    assert report["write_sql"].startswith("INSERT INTO order_snapshots")
    assert select in report["write_sql"]
    assert not [w for w in report["warnings"] if "full scan of 'chunk'" in w]
    text = invoke(*args).output
    assert text.count(select) == 1
    write = "INSERT INTO order_snapshots (order_id, status, snapshot) <the SELECT of statement 2>"
    assert write in text


def _committed_key(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = state.read(conn, "order-history")
    engine.dispose()
    assert found is not None and found.cursor_json is not None
    return int(json.loads(found.cursor_json)[0])


def test_status_reset_and_quarantine_find_the_state_in_the_source_like_run(db_url: str) -> None:
    reference.build(db_url, orders=100)
    invoke("run", MIGRATION_FILE, "--source", db_url, "--chunk-size", "10", "--max-chunks", "1")
    assert "order-history" in invoke("status", "--source", db_url).output
    by_env = CliRunner(env={"ROWFERRY_SOURCE": db_url, "ROWFERRY_TARGET": None})
    assert "order-history" in by_env.invoke(main, ["status"]).output
    assert by_env.invoke(main, ["quarantine", "order-history"]).exit_code == 0
    reset = invoke("reset", "order-history", "--source", db_url, "--yes")
    assert reset.exit_code == 0 and "progress forgotten" in reset.output
    nowhere = CliRunner(env={"ROWFERRY_SOURCE": None, "ROWFERRY_TARGET": None})
    result = nowhere.invoke(main, ["status"])
    assert result.exit_code == defaults.EXIT_CONFIG and "--target URL" in result.output


def test_reset_and_quarantine_refuse_a_migration_the_database_does_not_know(db_url: str) -> None:
    reference.build(db_url, orders=60)
    invoke("run", MIGRATION_FILE, "--source", db_url, "--max-chunks", "1")
    for command in (["reset", "order-histroy", "--yes"], ["quarantine", "order-histroy"]):
        result = invoke(*command, "--target", db_url)
        assert result.exit_code == defaults.EXIT_CONFIG, result.output
        assert "no migration named 'order-histroy'" in result.output
        assert "(recorded: 'order-history')" in result.output
    assert json.loads(invoke("status", "--target", db_url, "--json").output)  # not reset


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://root:hunter2-secret@db:port/test",
        "mysql+pymysql://root:hunter2@secret@db:port/test",
        "hunter2-secret",
        "root:hunter2-secret@db",
    ],
)
def test_an_unparsable_url_is_shown_without_its_password(url: str) -> None:
    result = invoke("run", MIGRATION_FILE, "--source", url)
    assert result.exit_code == defaults.EXIT_CONFIG
    assert "cannot parse" in result.output and "hunter2" not in result.output
    assert "secret" not in result.output


@SQLITE_ONLY
def test_with_json_every_error_is_one_json_object_on_stdout(db_url: str, tmp_path: Path) -> None:
    reference.build(db_url, orders=60)
    broken = str(_broken_migration(tmp_path))
    cases = [
        (["run", "no_such_file.py", "--source", db_url], "refused", "does not exist"),
        (["run", MIGRATION_FILE, "--source", db_url, "--time-budget", "soon"], "refused", "soon"),
        (["run", broken, "--source", db_url, "--max-bad-rows", "3"], "failed", "max_bad_rows=3"),
        (["status", "--target", "mysql://u:hunter2@h:x/db"], "refused", "cannot parse"),
        (["quarantine", "nope", "--target", db_url], "refused", "no migration named 'nope'"),
    ]
    for args, kind, words in cases:
        result = CliRunner().invoke(main, [*args, "--json"])
        error = json.loads(result.stdout)
        assert result.stderr == "", result.stderr
        assert error["status"] == kind and error["exit_status"] == result.exit_code, error
        assert words in error["error"] and "hunter2" not in result.stdout


@SQLITE_ONLY
def test_status_off_a_terminal_is_plain_columns_with_counts_aligned_right(db_url: str) -> None:
    reference.build(db_url, orders=300)
    invoke("run", MIGRATION_FILE, "--source", db_url, "--chunk-size", "20", "--max-chunks", "1")
    lines = invoke("status", "--target", db_url).output.splitlines()
    assert not set("".join(lines)) & set("│┃━─┏┡└")
    header, row = lines[0], lines[1]
    assert header.startswith("migration") and row.startswith("order-history")
    for column, value in (("rows done", "20"), ("chunks", "1"), ("trips", "1")):
        end = header.index(column) + len(column)
        assert row[end - len(value) : end] == value and row[end - len(value) - 1] == " "


def _imported(*args: str) -> set[str]:
    """The modules a ``rowferry`` command line imports, in a fresh process off a terminal."""
    code = (
        "import sys\nfrom rowferry.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    return set(done.stderr.split())


def test_version_loads_neither_sqlalchemy_nor_rich() -> None:
    loaded = _imported("--version")
    assert "rowferry.cli.main" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("sqlalchemy", "rich")}


@SQLITE_ONLY
def test_run_off_a_terminal_loads_only_what_it_needs(db_url: str) -> None:
    reference.build(db_url, orders=60)
    loaded = _imported("run", MIGRATION_FILE, "--source", db_url, "--max-chunks", "1")
    assert "rowferry.engine.run" in loaded and "sqlalchemy" in loaded
    unneeded = ("rich", "pymysql", "psycopg", "MySQLdb", "aws_lambda_powertools", "boto3")
    assert not {m for m in loaded if m.split(".")[0] in unneeded}
    other_commands = {
        "rowferry.verify.check",
        "rowferry.plan",
        "rowferry.aws.package",
        "rowferry.cli.simulate",
    }
    assert not loaded & other_commands


def test_every_control_command_explains_itself_and_the_exit_statuses() -> None:
    for command in (["pause"], ["resume"], ["cancel"], ["set"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0, result.output
        assert "Exit statuses" in result.output and "6  paused" in result.output


@SQLITE_ONLY
def test_run_refuses_bad_throttle_options_before_writing_anything(db_url: str) -> None:
    reference.build(db_url, orders=60)
    cases = [
        (["--max-load", "150%"], "must be above 0 and at most 100"),
        (["--max-load", "half"], "'half' is not a percentage like 50%"),
        (["--check", "SELECT 1"], "'SELECT 1' is not SQL<=LIMIT"),
        (["--check", "SELECT 1<=many"], "is not a number: 'many'"),
        (["--sleep", "-1"], "'-1' is not a duration"),
        (["--max-threads-running", "0"], "0 is not in the range x>=1"),
        (["--max-replica-lag", "2"], "--max-replica-lag needs a --replica URL to watch"),
        (["--replica", "mysql+pymysql://u:hunter2@db:port/x"], "cannot parse"),
        (["--max-history-length", "10"], "the history list length is InnoDB's"),
        (["--check", "SELECT depth FROM no_such_queue<=1"], "no_such_queue"),
    ]
    for extra, words in cases:
        result = invoke("run", MIGRATION_FILE, "--source", db_url, *extra)
        assert result.exit_code == defaults.EXIT_CONFIG, (extra, result.output)
        assert words in result.output and "hunter2" not in result.output, result.output
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table(state.STATE_TABLE)
    engine.dispose()


def test_pause_resume_set_and_cancel_from_the_command_line(db_url: str) -> None:
    reference.build(db_url, orders=200)
    name = "order-history"

    def run(*args: str) -> Result:
        return invoke("run", MIGRATION_FILE, "--source", db_url, "--chunk-size", "20", *args)

    def tell(*args: str, input: str | None = None) -> Result:
        return invoke(*args[:1], name, "--target", db_url, *args[1:], input=input)

    assert run("--max-chunks", "1").exit_code == defaults.EXIT_STOPPED
    assert "order-history: paused; a running trip stops" in tell("pause").output
    held = run()
    assert held.exit_code == defaults.EXIT_PAUSED, held.output
    assert "order-history: paused (paused from outside: 'rowferry resume order-history'" in (
        held.output
    )
    assert json.loads(invoke("status", "--target", db_url, "--json").output)[0]["state"] == (
        "paused"
    )
    assert "resumed" in tell("resume").output and "not paused" in tell("resume").output
    changed = tell("set", "--chunk-seconds", "0.2", "--max-load", "50%", "--sleep", "10ms")
    assert changed.exit_code == 0, changed.output
    assert "settings chunk_seconds=0.2, max_load=50, sleep=0.01" in changed.output
    assert "settings chunk_seconds=0.2, max_load=50, sleep=0.01" in tell("set").output
    result = json.loads(run("--max-chunks", "2", "--json").output)
    assert result["status"] == "stopped" and result["pause_seconds"] >= 0.01
    assert result["throttled_seconds"] == result["pause_seconds"] and result["gate_readings"] == []
    lines = invoke("status", "--target", db_url).output.splitlines()
    assert "rows/s" in lines[0] and "ETA" in lines[0]
    assert f"{name} settings: chunk_seconds=0.2, max_load=50, sleep=0.01" in lines
    assert any(line.startswith(f"{name} throttled ") for line in lines), lines
    assert "settings none" in tell("set", "--clear").output
    assert "nothing changed" in tell("cancel", input="n\n").output
    assert "cancelled; a running trip stops" in tell("cancel", "--yes").output
    ended = run()
    assert ended.exit_code == defaults.EXIT_CANCELLED and f"{name}: cancelled (" in ended.output
    refused = tell("resume")
    assert refused.exit_code == defaults.EXIT_CONFIG and "is cancelled and cannot be" in (
        refused.output
    )
    [row] = json.loads(invoke("status", "--target", db_url, "--json").output)
    assert row["state"] == "cancelled" and row["eta_seconds"] is None
    unknown = invoke("pause", "order-histroy", "--target", db_url)
    assert unknown.exit_code == defaults.EXIT_CONFIG and "no migration named" in unknown.output
