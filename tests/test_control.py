"""A migration told from outside, through its state row, on SQLite, MariaDB and PostgreSQL:
paused, resumed, cancelled and given new settings between the chunks of a running trip by
another connection; the lease kept through long pauses and waits; the time spent throttled
and the gates' readings in the result and the state row; and a state table of the previous
layout read and upgraded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

import rowferry
from rowferry import Budget, ConfigError, defaults
from rowferry.engine.throttle import Check, DutyCycle, Reading, Throttle
from rowferry.state import control
from rowferry.state import store as state

ROWS = 2000
MIGRATION = rowferry.Migration("copy", source="src", target="dst")


def _copy_job(url: str, rows: int = ROWS) -> None:
    meta = sa.MetaData()
    for name in ("src", "dst"):
        id_column = sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)
        sa.Table(name, meta, id_column, sa.Column("v", sa.Text))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        meta.create_all(conn)
        conn.execute(meta.tables["src"].insert(), [{"id": i, "v": f"v{i}"} for i in range(rows)])
    engine.dispose()


@contextmanager
def _connected(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _row(url: str) -> state.MigrationState:
    with _connected(url) as conn:
        found = state.peek(conn, MIGRATION.name)
    assert found is not None
    return found


def _copied(url: str) -> int:
    with _connected(url) as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM dst").scalar_one())


def _after_chunk(number: int, act: Callable[[], object]) -> Callable[[rowferry.ChunkDone], None]:
    """An ``on_chunk`` that calls ``act`` once the trip's chunk ``number`` has committed."""
    seen: list[int] = []

    def on_chunk(event: rowferry.ChunkDone) -> None:
        seen.append(event.rows_read)
        if len(seen) == number:
            act()

    return on_chunk


def _tell(url: str, action: control.Action) -> bool:
    with _connected(url) as conn:
        return control.hold(conn, MIGRATION.name, action)


def test_a_pause_from_another_connection_stops_the_trip_before_its_next_chunk(
    db_url: str,
) -> None:
    _copy_job(db_url)
    paused = rowferry.run(
        MIGRATION, db_url, chunk_size=100, on_chunk=_after_chunk(2, lambda: _tell(db_url, "pause"))
    )
    assert paused.status == "paused" and not paused.done
    assert paused.chunks == 2 and _copied(db_url) == 200
    assert f"'rowferry resume {MIGRATION.name}'" in paused.reason
    row = _row(db_url)
    assert row.display_status == "paused" and row.owner is None  # its lease released
    assert (row.token, row.chunks, row.rows_read) == (1, 2, 200)  # the pause moved no token


def test_a_paused_migration_s_trips_do_nothing_until_it_is_resumed(db_url: str) -> None:
    _copy_job(db_url)
    rowferry.run(MIGRATION, db_url, chunk_size=100, budget=Budget(max_chunks=1))
    assert _tell(db_url, "pause") and not _tell(db_url, "pause")
    again = rowferry.run(MIGRATION, db_url, chunk_size=100)
    assert again.status == "paused" and again.chunks == 0
    assert _row(db_url).trips == 1  # no lease taken, no trip counted
    assert _tell(db_url, "resume") and not _tell(db_url, "resume")
    done = rowferry.run(MIGRATION, db_url, chunk_size=100)
    assert done.done and _copied(db_url) == ROWS
    assert _row(db_url).display_status == "done"


def test_cancel_ends_the_migration_keeping_what_it_wrote_until_a_reset(db_url: str) -> None:
    _copy_job(db_url)
    cancelled = rowferry.run(
        MIGRATION, db_url, chunk_size=100, on_chunk=_after_chunk(1, lambda: _tell(db_url, "cancel"))
    )
    assert cancelled.status == "cancelled" and cancelled.chunks == 1
    assert _copied(db_url) == 100 and _row(db_url).display_status == "cancelled"
    assert rowferry.run(MIGRATION, db_url).status == "cancelled"
    for refused in ("resume", "pause"):
        with pytest.raises(ConfigError, match="is cancelled and cannot be"):
            _tell(db_url, refused)
    with _connected(db_url) as conn:
        state.reset(conn, MIGRATION.name)
    with _connected(db_url) as conn:
        conn.exec_driver_sql("DELETE FROM dst")
        conn.commit()
    assert rowferry.run(MIGRATION, db_url).done and _copied(db_url) == ROWS


@pytest.mark.parametrize("dialect_name", ["sqlite"])
def test_a_done_or_unknown_migration_is_not_paused_or_cancelled(db_url: str) -> None:
    _copy_job(db_url, rows=10)
    rowferry.run(MIGRATION, db_url)
    for action in ("pause", "cancel"):
        with pytest.raises(ConfigError, match="is done: there is nothing to"):
            _tell(db_url, action)
    assert not _tell(db_url, "resume")
    with _connected(db_url) as conn, pytest.raises(ConfigError, match="no migration named 'x'"):
        control.hold(conn, "x", "pause")
    too_much = "max_load must be above 0 and at most 100, not 150"
    with _connected(db_url) as conn, pytest.raises(ConfigError, match=too_much):
        control.change(conn, MIGRATION.name, control.Settings(max_load=150))


def test_new_settings_survive_the_running_trip_s_checkpoints_and_move_no_token(
    db_url: str,
) -> None:
    _copy_job(db_url)

    def change() -> None:
        with _connected(db_url) as conn:
            control.change(conn, MIGRATION.name, control.Settings(max_replica_lag=3, sleep=0))

    result = rowferry.run(MIGRATION, db_url, chunk_size=100, on_chunk=_after_chunk(1, change))
    assert result.done and result.chunks == ROWS // 100
    row = _row(db_url)
    assert control.of(row).settings == control.Settings(max_replica_lag=3, sleep=0)
    assert (row.token, row.trips) == (1, 1)
    with _connected(db_url) as conn:
        assert control.change(conn, MIGRATION.name, control.Settings(), clear=True).items() == {}


def test_set_changes_the_chunk_target_of_a_running_trip(db_url: str) -> None:
    """A target of 10 µs makes "auto" size every chunk at its least at once: without it the
    size could at most halve per chunk (1,000, then 500, then 250)."""
    _copy_job(db_url, rows=5000)
    sizes: list[int] = []

    def shorter() -> None:
        with _connected(db_url) as conn:
            control.change(conn, MIGRATION.name, control.Settings(chunk_seconds=0.00001))

    on_chunk = _after_chunk(1, shorter)

    def record(event: rowferry.ChunkDone) -> None:
        sizes.append(event.rows_read)
        on_chunk(event)

    result = rowferry.run(MIGRATION, db_url, budget=Budget(max_chunks=4), on_chunk=record)
    assert sizes[0] == defaults.CHUNK_SIZE and result.chunks == 4
    # the chunk after the change may have been read ahead at the size before it
    assert sizes[2:] == [defaults.MIN_CHUNK_SIZE, defaults.MIN_CHUNK_SIZE], sizes


def test_a_duty_cycle_pauses_at_least_as_long_as_the_chunks_took(db_url: str) -> None:
    _copy_job(db_url)
    chunks: list[float] = []
    budget = Budget(throttle=Throttle([], duty_cycle=DutyCycle(0.5)))
    result = rowferry.run(
        MIGRATION,
        db_url,
        chunk_size=250,
        budget=budget,
        on_chunk=lambda e: chunks.append(e.seconds),
    )
    assert result.done and len(chunks) == ROWS // 250
    assert result.pause_seconds >= sum(chunks[:-1]) > 0
    assert result.throttled_seconds == result.pause_seconds and result.gate_wait_seconds == 0
    assert _row(db_url).throttled_seconds == pytest.approx(result.pause_seconds, abs=0.002)


@pytest.mark.parametrize("dialect_name", ["sqlite"])
def test_a_pause_that_would_not_fit_the_budget_stops_the_trip_as_the_budget_does(
    db_url: str,
) -> None:
    _copy_job(db_url)
    budget = Budget(seconds=30, throttle=Throttle([], pause_seconds=60))
    result = rowferry.run(MIGRATION, db_url, chunk_size=100, budget=budget)
    assert result.status == "stopped" and result.chunks == 1
    assert result.reason.startswith("time budget: ") and "the pause of 60.00 s" in result.reason
    assert result.pause_seconds == 0


def _expire_lease(url: str) -> None:
    """As if the time had passed the end of the lease."""
    with _connected(url) as conn:
        long_ago = state.utcnow().replace(year=2000)
        conn.execute(state.state_table.update().values(lease_until=long_ago))
        conn.commit()


def test_a_trip_without_a_time_budget_keeps_its_lease_through_a_long_pause(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first slice of a pause lets the lease run out (as a long pause would); the trip
    extends it after the slice, so that a run started during the second is refused instead
    of taking over."""
    _copy_job(db_url, rows=200)
    monkeypatch.setattr(defaults, "LEASE_RENEW_SECONDS", 0.0)
    slices: list[float] = []
    refused: list[str] = []

    def sleep(seconds: float) -> None:
        slices.append(seconds)
        if len(slices) == 1:
            _expire_lease(db_url)
        elif len(slices) == 2:
            with pytest.raises(rowferry.AlreadyRunning) as error:
                rowferry.run(MIGRATION, db_url)
            refused.append(str(error.value))

    throttle = Throttle([], sleep=sleep, clock=_Clock(slices), pause_seconds=5.0)
    result = rowferry.run(MIGRATION, db_url, chunk_size=100, budget=Budget(throttle=throttle))
    assert result.done and _copied(db_url) == 200
    assert "is already running" in refused[0]


class _Clock:
    """A clock that moves by the sleeps recorded in ``calls`` only."""

    def __init__(self, calls: list[float]) -> None:
        self.calls = calls

    def __call__(self) -> float:
        return sum(self.calls)


def test_a_gate_wait_reports_its_time_and_the_last_readings(db_url: str) -> None:
    _copy_job(db_url, rows=200)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE knob (depth INTEGER)")
        conn.exec_driver_sql("INSERT INTO knob VALUES (5)")
    calls: list[float] = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 3:
            with engine.begin() as conn:
                conn.exec_driver_sql("UPDATE knob SET depth = 0")

    gate = Check(engine, "SELECT depth FROM knob", limit=1, name="queue depth")
    throttle = Throttle([gate], sleep=sleep, clock=_Clock(calls))
    result = rowferry.run(MIGRATION, db_url, chunk_size=100, budget=Budget(throttle=throttle))
    engine.dispose()
    assert result.done and len(calls) == 3
    assert result.gate_readings == (Reading("queue depth", 0.0, 1.0),)
    assert result.gate_wait_seconds == pytest.approx(sum(calls))
    row = _row(db_url)
    assert json.loads(row.gates_json or "") == [
        {"gate": "queue depth", "value": 0.0, "limit": 1.0, "over": False, "setting": ""}
    ]
    assert row.throttled_seconds == pytest.approx(sum(calls), abs=0.002)
    assert row.as_dict()["gates"][0]["gate"] == "queue depth"


def test_a_state_table_of_the_previous_layout_is_read_and_upgraded(db_url: str) -> None:
    """A table written before the control and throttle columns existed: ``status`` reads it
    as it is, ``pause`` and the next trip add the columns."""
    _copy_job(db_url)
    added = {"control", "settings_json", "throttled_seconds", "gates_json"}
    kept = [c for c in state.state_table.columns if c.name not in added]
    table = sa.Table(
        state.STATE_TABLE,
        sa.MetaData(),
        *(
            sa.Column(
                c.name,
                c.type,
                primary_key=c.primary_key,
                nullable=c.nullable,
                server_default=getattr(c.server_default, "arg", None),
            )
            for c in kept
        ),
    )
    rowferry.run(MIGRATION, db_url, chunk_size=100, budget=Budget(max_chunks=1))
    with _connected(db_url) as conn:
        saved = conn.execute(sa.select(*kept)).mappings().one()
        state.state_table.drop(conn)
        table.create(conn)
        conn.execute(table.insert().values(**saved))
        conn.commit()
    with _connected(db_url) as conn:
        [found] = state.read_all(conn)
    assert (found.rows_read, found.control, found.throttled_seconds) == (100, None, None)
    assert found.display_status == "stopped"
    assert _tell(db_url, "pause")
    assert rowferry.run(MIGRATION, db_url).status == "paused"
    assert _tell(db_url, "resume")
    assert rowferry.run(MIGRATION, db_url, chunk_size=100).done and _copied(db_url) == ROWS
