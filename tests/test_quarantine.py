"""Bad rows are quarantined, not lost and not fatal; after a fix they can be run again.

The invariant checked throughout: every qualifying source key is in the target or in the
quarantine, exactly once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import rowferry
from harness import reference
from rowferry import Budget
from rowferry.cli.main import main
from rowferry.demo import order_history, workload
from rowferry.requeue import retry_quarantined
from rowferry.state import quarantine
from rowferry.state import store as state

BROKEN: set[int] = set()


def picky(order: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
    """The reference transform, failing for the orders in BROKEN."""
    if order["id"] in BROKEN:
        raise ValueError(f"cannot snapshot order {order['id']}")
    return order_history.snapshot(order, related)


MIGRATION = replace(order_history.migration, transform=picky)


def _qualifying(url: str) -> set[int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = (
            conn.execute(
                sa.text("SELECT id FROM orders WHERE status IN :s").bindparams(
                    sa.bindparam("s", list(workload.FINAL_STATUSES), expanding=True)
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return set(ids)


def _held(url: str) -> list[quarantine.Entry]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = quarantine.entries(conn, MIGRATION.name)
    engine.dispose()
    return found


def _assert_every_key_once(url: str) -> None:
    stored = list(reference.snapshots(url))  # fails on a duplicate
    held = [entry.key[0] for entry in _held(url)]
    assert sorted(stored + held) == sorted(_qualifying(url))


@pytest.fixture(autouse=True)
def _clear_broken() -> None:
    BROKEN.clear()


def test_rows_whose_transform_fails_are_quarantined_and_the_rest_proceeds(db_url: str) -> None:
    reference.build(db_url, orders=300)
    BROKEN.update(sorted(_qualifying(db_url))[::17])
    result = rowferry.run(MIGRATION, db_url, chunk_size=40)
    assert result.done and result.rows_quarantined == len(BROKEN)
    held = _held(db_url)
    assert {e.key[0] for e in held} == BROKEN
    first = held[0]
    assert first.reason.startswith("transform: ValueError: cannot snapshot order")
    assert json.loads(first.row_json or "{}")["id"] == first.key[0]
    _assert_every_key_once(db_url)


def test_rows_the_target_rejects_are_found_and_quarantined(db_url: str) -> None:
    reference.build(db_url, orders=300)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # the target refuses every order id divisible by 10
        conn.exec_driver_sql("DROP TABLE order_snapshots")
        conn.execute(
            sa.text(
                "CREATE TABLE order_snapshots (order_id INTEGER PRIMARY KEY, status VARCHAR(20) "
                "NOT NULL, snapshot TEXT NOT NULL, CONSTRAINT no_tens CHECK (order_id % 10 <> 0))"
            )
        )
    engine.dispose()
    result = rowferry.run(MIGRATION, db_url, chunk_size=50)
    rejected = {k for k in _qualifying(db_url) if k % 10 == 0}
    assert result.done and result.rows_quarantined == len(rejected) > 0
    held = _held(db_url)
    assert {e.key[0] for e in held} == rejected
    assert all(e.reason.startswith("target: ") for e in held)
    _assert_every_key_once(db_url)


def test_a_target_that_rejects_every_row_stops_the_run(db_url: str) -> None:
    reference.build(db_url, orders=100)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE order_snapshots")
        conn.exec_driver_sql(
            "CREATE TABLE order_snapshots (order_id INTEGER PRIMARY KEY, status VARCHAR(20), "
            "snapshot TEXT, CONSTRAINT never CHECK (order_id < 0))"
        )
    engine.dispose()
    with pytest.raises(rowferry.MigrationFailed, match="rejected every row of the chunk"):
        rowferry.run(MIGRATION, db_url, chunk_size=20)
    assert _held(db_url) == []


def test_too_many_bad_rows_stop_the_run_with_what_was_done_kept(db_url: str) -> None:
    reference.build(db_url, orders=300)
    BROKEN.update(_qualifying(db_url))
    with pytest.raises(rowferry.MigrationFailed, match="more than max_bad_rows=25"):
        rowferry.run(MIGRATION, db_url, chunk_size=10, budget=Budget(max_bad_rows=25))
    assert len(_held(db_url)) == 30  # three chunks of ten, all committed to the quarantine
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        saved = state.read(conn, MIGRATION.name)
    engine.dispose()
    assert saved is not None and saved.status == "failed" and saved.rows_quarantined == 30


def test_retry_after_a_fix_moves_rows_out_of_the_quarantine(db_url: str) -> None:
    reference.build(db_url, orders=300)
    keys = sorted(_qualifying(db_url))
    BROKEN.update(keys[::9])
    assert rowferry.run(MIGRATION, db_url, chunk_size=30).done
    still_broken = set(keys[::27])
    BROKEN.intersection_update(still_broken)  # "fix" most of them
    report = retry_quarantined(MIGRATION, db_url)
    assert (report.succeeded, report.still_bad) == (
        len(keys[::9]) - len(still_broken),
        len(still_broken),
    )
    held = _held(db_url)
    assert {e.key[0] for e in held} == still_broken and all(e.attempts == 2 for e in held)
    _assert_every_key_once(db_url)
    BROKEN.clear()
    assert retry_quarantined(MIGRATION, db_url).succeeded == len(still_broken)
    assert _held(db_url) == []
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)


def test_keys_that_no_longer_qualify_leave_the_quarantine(db_url: str) -> None:
    reference.build(db_url, orders=100)
    bad = sorted(_qualifying(db_url))[0]
    BROKEN.add(bad)
    assert rowferry.run(MIGRATION, db_url).done
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET status = 'pending' WHERE id = :i"), {"i": bad})
    engine.dispose()
    report = retry_quarantined(MIGRATION, db_url)
    assert (report.gone, report.succeeded, _held(db_url)) == (1, 0, [])


def test_the_quarantine_command_lists_and_retries(db_url: str, tmp_path: Path) -> None:
    reference.build(db_url, orders=100)
    flag = tmp_path / "broken"
    flag.write_text("yes")
    spec = tmp_path / "picky.py"
    spec.write_text(
        "from dataclasses import replace\nfrom pathlib import Path\n"
        "from rowferry.demo import order_history\n"
        f"FLAG = Path({str(flag)!r})\n"
        "def picky(order, related):\n"
        "    if order['id'] % 3 == 0 and FLAG.exists():\n"
        "        raise ValueError('not today')\n"
        "    return order_history.snapshot(order, related)\n"
        "migration = replace(order_history.migration, transform=picky)\n"
    )
    runner = CliRunner()
    assert runner.invoke(main, ["run", str(spec), "--source", db_url]).exit_code == 0
    listed = runner.invoke(main, ["quarantine", "order-history", "--target", db_url])
    count = len([k for k in _qualifying(db_url) if k % 3 == 0])
    assert f"order-history: {count} quarantined rows" in listed.output
    assert "transform: ValueError: not today" in listed.output
    flag.unlink()
    retried = runner.invoke(
        main,
        [
            "quarantine",
            "order-history",
            "--target",
            db_url,
            "--retry",
            str(spec),
            "--source",
            db_url,
        ],
    )
    assert retried.exit_code == 0, retried.output
    assert f"retried {count} rows: {count} migrated" in retried.output
    status = json.loads(runner.invoke(main, ["status", "--target", db_url, "--json"]).output)
    assert status[0]["rows_quarantined"] == 0 and status[0]["rows_written"] == len(
        _qualifying(db_url)
    )


def test_reset_also_forgets_the_quarantine(db_url: str) -> None:
    reference.build(db_url, orders=100)
    BROKEN.add(sorted(_qualifying(db_url))[0])
    assert rowferry.run(MIGRATION, db_url).done
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        state.reset(conn, MIGRATION.name)
    engine.dispose()
    assert _held(db_url) == []


def test_a_retry_of_rows_that_still_fail_records_the_new_reason_and_one_more_attempt(
    db_url: str, tmp_path: Path
) -> None:
    """Even when the target rejects every retried row (which fails a chunk of a run): each
    keeps its new reason with one more attempt, and the command says so with exit status 1."""
    reference.build(db_url, orders=300)
    BROKEN.update(sorted(_qualifying(db_url))[:12])  # more than ALL_BAD_ROWS
    assert rowferry.run(MIGRATION, db_url).done
    assert {e.attempts for e in _held(db_url)} == {1}
    spec = tmp_path / "no_status.py"
    spec.write_text(
        "from dataclasses import replace\n"
        "from rowferry.demo import order_history\n"
        "def no_status(order, related):\n"
        "    return {**order_history.snapshot(order, related), 'status': None}\n"
        "migration = replace(order_history.migration, transform=no_status)\n"
    )
    args = ["quarantine", "order-history", "--target", db_url, "--retry", str(spec)]
    retried = CliRunner().invoke(main, [*args, "--source", db_url])
    assert retried.exit_code == 1, retried.output
    assert "retried 12 rows: 0 migrated (0 target rows written), 12 still failing" in retried.output
    assert "stay quarantined with their new reason" in retried.output
    held = _held(db_url)
    assert {e.key[0] for e in held} == BROKEN and {e.attempts for e in held} == {2}
    assert all(e.reason.startswith("target: ") for e in held)
    _assert_every_key_once(db_url)
