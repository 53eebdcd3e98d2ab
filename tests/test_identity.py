"""A state row's progress belongs to one migration: the same name over other rows is refused.

The state row records the source table, the key columns with their types, the filter with its
parameters and the target table. A trip whose migration differs in one of them is refused
before it writes anything, whatever the row's status; ``rowferry reset`` starts it over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import rowferry
from rowferry import Budget, Migration, Target, defaults
from rowferry.cli.main import main

ROWS = 30


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def _fetch(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.exec_driver_sql(query)]
    engine.dispose()
    return rows


def _build(url: str) -> None:
    """Two source tables (ids 1..30 and 101..130) and two empty targets of the same shape."""
    shape = "(id INTEGER NOT NULL PRIMARY KEY, label VARCHAR(20) NOT NULL)"
    _execute(url, *(f"CREATE TABLE {t} {shape}" for t in ("src_a", "src_b", "dst_a", "dst_b")))
    values = ", ".join(f"({i}, 'a{i}')" for i in range(1, ROWS + 1))
    others = ", ".join(f"({100 + i}, 'b{i}')" for i in range(1, ROWS + 1))
    _execute(url, f"INSERT INTO src_a VALUES {values}", f"INSERT INTO src_b VALUES {others}")


def _copy(source: str = "src_a", target: str | Target = "dst_a", **more: Any) -> Migration:
    return Migration(name="copy", source=source, target=target, **more)


def _first_chunk(url: str, migration: Migration) -> None:
    result = rowferry.run(migration, url, chunk_size=10, budget=Budget(max_chunks=1))
    assert (result.status, result.rows_read) == ("stopped", 10)


def _everything(url: str) -> list[Any]:
    """The targets' rows and the whole state row, as raw SQL reads them."""
    return [
        _fetch(url, "SELECT id, label FROM dst_a ORDER BY id"),
        _fetch(url, "SELECT id, label FROM dst_b ORDER BY id"),
        _fetch(url, "SELECT * FROM rowferry_state ORDER BY name"),
    ]


def _refused(url: str, migration: Migration, match: str) -> str:
    """Run ``migration``, expect the refusal, check that nothing changed; the message."""
    before = _everything(url)
    with pytest.raises(rowferry.StateError, match=match) as refusal:
        rowferry.run(migration, url, chunk_size=10)
    assert _everything(url) == before
    message = str(refusal.value)
    assert "'copy'" in message and "rowferry reset copy" in message and "new name" in message
    return message


def test_a_done_migration_reused_for_another_source_table_is_refused(db_url: str) -> None:
    _build(db_url)
    assert rowferry.run(_copy(), db_url).done
    message = _refused(db_url, _copy(source="src_b"), "source table was 'src_a', now 'src_b'")
    assert "(done, rows read: 30)" in message


def test_a_key_type_changed_between_trips_is_refused(db_url: str, dialect_name: str) -> None:
    _build(db_url)
    _first_chunk(db_url, _copy())
    if dialect_name == "postgresql":
        _execute(db_url, "ALTER TABLE src_a ALTER COLUMN id TYPE VARCHAR(20)")
    elif dialect_name == "mariadb":
        _execute(db_url, "ALTER TABLE src_a MODIFY id VARCHAR(20) NOT NULL")
    else:
        _execute(
            db_url,
            "CREATE TABLE src_new (id VARCHAR(20) NOT NULL PRIMARY KEY, label TEXT NOT NULL)",
            "INSERT INTO src_new SELECT CAST(id AS TEXT), label FROM src_a",
            "DROP TABLE src_a",
            "ALTER TABLE src_new RENAME TO src_a",
        )
    _refused(db_url, _copy(), r"key id was INTEGER, now VARCHAR\(20\)")


def test_a_changed_filter_is_refused(db_url: str) -> None:
    _build(db_url)
    _first_chunk(db_url, _copy(where="id > :low", params={"low": 0}))
    changed = _copy(where="id >= :low", params={"low": 0})
    _refused(db_url, changed, "filter was 'id > :low', now 'id >= :low'")


def test_a_changed_filter_parameter_is_refused(db_url: str) -> None:
    _build(db_url)
    _first_chunk(db_url, _copy(where="id > :low", params={"low": 0}))
    changed = _copy(where="id > :low", params={"low": 5})
    _refused(db_url, changed, r'filter parameters were \{"low": 0\}, now \{"low": 5\}')


def test_a_filter_only_reformatted_resumes(db_url: str) -> None:
    _build(db_url)
    _first_chunk(db_url, _copy(where="id > :low", params={"low": 0, "unused": 1}))
    same = _copy(where="  id >\n :low ", params={"low": 0, "unused": 2})
    assert rowferry.run(same, db_url).done
    assert len(_fetch(db_url, "SELECT id FROM dst_a")) == ROWS


def test_a_changed_target_table_is_refused(db_url: str) -> None:
    _build(db_url)
    _first_chunk(db_url, _copy())
    _refused(db_url, _copy(target="dst_b"), "target table was 'dst_a', now 'dst_b'")


def test_a_changed_conflict_policy_resumes(db_url: str) -> None:
    _build(db_url)
    _first_chunk(db_url, _copy())
    skipping = _copy(target=Target("dst_a", unique_key=["id"], on_conflict="skip"))
    assert rowferry.run(skipping, db_url).done
    assert len(_fetch(db_url, "SELECT id FROM dst_a")) == ROWS


def test_after_reset_the_changed_migration_runs(db_url: str) -> None:
    _build(db_url)
    assert rowferry.run(_copy(), db_url).done
    with pytest.raises(rowferry.StateError):
        rowferry.run(_copy(source="src_b"), db_url)
    reset = CliRunner().invoke(main, ["reset", "copy", "--target", db_url, "--yes"])
    assert reset.exit_code == 0, reset.output
    result = rowferry.run(_copy(source="src_b"), db_url)
    assert result.done and result.rows_done == ROWS
    assert len(_fetch(db_url, "SELECT id FROM dst_a WHERE id > 100")) == ROWS


def test_a_state_row_without_identity_takes_the_current_one_and_continues(db_url: str) -> None:
    """As a row written by an older rowferry: the next trip records the identity and goes on."""
    _build(db_url)
    _first_chunk(db_url, _copy())
    recorded = _fetch(db_url, "SELECT identity FROM rowferry_state")
    _execute(db_url, "UPDATE rowferry_state SET identity = NULL")
    result = rowferry.run(_copy(), db_url)
    assert result.done and result.rows_done == ROWS
    assert _fetch(db_url, "SELECT identity FROM rowferry_state") == recorded
    assert len(_fetch(db_url, "SELECT id FROM dst_a")) == ROWS


def test_a_state_table_without_the_identity_column_gets_it_and_continues(db_url: str) -> None:
    _build(db_url)
    _first_chunk(db_url, _copy())
    recorded = _fetch(db_url, "SELECT identity FROM rowferry_state")
    _execute(db_url, "ALTER TABLE rowferry_state DROP COLUMN identity")
    result = rowferry.run(_copy(), db_url)
    assert result.done and result.rows_done == ROWS
    assert _fetch(db_url, "SELECT identity FROM rowferry_state") == recorded


def test_a_done_row_without_identity_records_it_and_then_refuses_a_change(db_url: str) -> None:
    _build(db_url)
    assert rowferry.run(_copy(), db_url).done
    recorded = _fetch(db_url, "SELECT identity FROM rowferry_state")
    _execute(db_url, "UPDATE rowferry_state SET identity = NULL")
    again = rowferry.run(_copy(), db_url)
    assert (again.status, again.reason) == ("done", "already done")
    assert _fetch(db_url, "SELECT identity FROM rowferry_state") == recorded
    _refused(db_url, _copy(source="src_b"), "source table was 'src_a', now 'src_b'")


def test_an_unchanged_migration_resumes_over_many_trips(db_url: str) -> None:
    _build(db_url)
    trips = 0
    while True:
        trips += 1
        result = rowferry.run(_copy(), db_url, chunk_size=4, budget=Budget(max_chunks=2))
        if result.done or trips > ROWS:
            break
    assert result.done and trips == 4  # 8 rows per trip, the fourth finds the last 6
    assert _fetch(db_url, "SELECT id, label FROM dst_a ORDER BY id") == _fetch(
        db_url, "SELECT id, label FROM src_a ORDER BY id"
    )
    assert _fetch(db_url, "SELECT trips FROM rowferry_state") == [(4,)]


def test_the_cli_fails_with_the_reason_on_a_changed_migration(db_url: str, tmp_path: Path) -> None:
    _build(db_url)
    files = {}
    for source in ("src_a", "src_b"):
        files[source] = tmp_path / f"copy_{source}.py"
        files[source].write_text(
            "from rowferry import Migration\n"
            f"migration = Migration(name='copy', source='{source}', target='dst_a')\n"
        )
    runner = CliRunner()
    done = runner.invoke(main, ["run", str(files["src_a"]), "--source", db_url])
    assert done.exit_code == defaults.EXIT_DONE, done.output
    before = _everything(db_url)
    refused = runner.invoke(main, ["run", str(files["src_b"]), "--source", db_url])
    assert refused.exit_code == defaults.EXIT_CONFIG, refused.output
    assert "source table was 'src_a', now 'src_b'" in refused.output
    assert "rowferry reset copy" in refused.output
    assert _everything(db_url) == before
