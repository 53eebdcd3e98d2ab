"""The health gates on real servers: replicas that lag for real (:mod:`tests.replicas`), the
primary's running threads and history list, a query of the user's; and the throttle's waiting
inside a deadline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import rowferry
from rowferry import Budget, ConfigError, defaults
from rowferry.cli.main import main
from rowferry.engine.throttle import (
    Check,
    DutyCycle,
    HistoryLength,
    ReplicaLag,
    ThreadsRunning,
    Throttle,
)
from rowferry.state import control
from tests.replicas import MariaDBPair, PostgresPair, mariadb_pair, postgres_pair

#: long enough for a replica to apply a statement on a loaded machine
PATIENCE_SECONDS = 60.0


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDBPair]:
    with mariadb_pair() as pair:
        yield pair


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresPair]:
    with postgres_pair() as pair:
        yield pair


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def _caught_up(throttle: Throttle) -> None:
    waited = throttle.wait(time.monotonic() + PATIENCE_SECONDS)
    assert not waited.throttled, [str(r) for r in waited.readings]


def _resume_later(pair: Any, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), pair.resume_applying()))
    thread.start()
    return thread


def test_a_mariadb_replica_that_stops_applying_holds_the_trip_until_it_applies_again(
    mariadb: MariaDBPair,
) -> None:
    lag = ReplicaLag(_engine(mariadb.replica_url), limit=1.0)
    throttle = Throttle([lag])
    _caught_up(throttle)
    mariadb.stop_applying()
    try:
        [reading] = throttle.read()
        assert reading.over and reading.value is None  # no SQL thread: lag unknown
        assert "replica lag unknown (limit 1)" in str(reading)
        waited = throttle.wait(time.monotonic() + 0.5)
        assert waited.throttled and waited.over == [reading]
        resumer = _resume_later(mariadb, 1.0)
        waited = throttle.wait(time.monotonic() + PATIENCE_SECONDS)
        resumer.join()
    finally:
        mariadb.resume_applying()
    assert not waited.throttled and waited.seconds >= 1.0
    assert throttle.waited >= waited.seconds
    assert lag.read() == 0.0


def test_a_postgresql_standby_whose_replay_is_paused_lags_by_the_age_of_its_last_replay(
    postgres: PostgresPair,
) -> None:
    throttle = Throttle([ReplicaLag(_engine(postgres.standby_url), limit=0.5)])
    with postgres.connect(postgres.primary_port) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INT)")
    # a transaction replayed: the standby's lag is the age of the last one it replayed
    seen = time.monotonic() + PATIENCE_SECONDS
    while not postgres.on_standby("SELECT to_regclass('t') IS NOT NULL")[0][0]:
        assert time.monotonic() < seen, "the standby did not replay CREATE TABLE"
        time.sleep(0.1)
    _caught_up(throttle)
    postgres.stop_applying()
    try:
        with postgres.connect(postgres.primary_port) as conn:
            conn.execute("INSERT INTO t VALUES (1)")
        time.sleep(0.6)
        [reading] = throttle.read()
        assert reading.over and reading.value is not None and reading.value > 0.5
        resumer = _resume_later(postgres, 1.0)
        waited = throttle.wait(time.monotonic() + PATIENCE_SECONDS)
        resumer.join()
    finally:
        postgres.resume_applying()
    assert not waited.throttled
    [after] = waited.readings
    assert after.value is not None and after.value <= 0.5


def test_replica_lag_on_a_server_that_is_no_replica_is_refused(
    mariadb: MariaDBPair, postgres: PostgresPair
) -> None:
    with pytest.raises(ConfigError, match="is not a replica"):
        ReplicaLag(_engine(mariadb.primary_url), limit=1).read()
    with pytest.raises(ConfigError, match="is not a standby"):
        ReplicaLag(_engine(postgres.primary_url), limit=1).read()


def test_running_threads_history_length_and_a_users_check_are_read_from_the_server(
    mariadb: MariaDBPair, postgres: PostgresPair
) -> None:
    primary = _engine(mariadb.primary_url)
    for engine in (primary, _engine(postgres.primary_url)):
        threads = ThreadsRunning(engine, limit=1000).read()
        assert threads is not None and threads >= 0
    history = HistoryLength(primary, limit=10**6).read()
    assert history is not None and history >= 0
    with pytest.raises(ConfigError, match="MySQL and MariaDB only"):
        HistoryLength(_engine(postgres.primary_url), limit=1).read()
    check = Check(primary, "SELECT 7", limit=5, name="queue depth")
    [reading] = Throttle([check]).read()
    assert reading.over and str(reading) == "queue depth 7 (limit 5)"


def test_a_duty_cycle_pauses_in_proportion_to_the_chunk() -> None:
    assert DutyCycle(0.5).pause_after(2.0) == 2.0
    assert DutyCycle(1.0).pause_after(2.0) == 0.0
    assert DutyCycle(0.25).pause_after(1.0) == 3.0
    with pytest.raises(ConfigError, match="above 0 and at most 1"):
        DutyCycle(0)


def _copy_job(pair: MariaDBPair) -> None:
    with pair.connect(pair.primary_port) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS rowferry.src, rowferry.dst, rowferry.rowferry_state")
        cur.execute("CREATE TABLE rowferry.src (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute("CREATE TABLE rowferry.dst (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute(
            "INSERT INTO rowferry.src VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(30))
        )


def _copied(pair: MariaDBPair) -> int:
    with pair.connect(pair.primary_port) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM rowferry.dst")
        return int(cur.fetchone()[0])


def test_a_trip_waits_for_a_lagging_replica_and_stops_as_throttled_when_it_cannot_wait(
    mariadb: MariaDBPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_job(mariadb)
    migration = rowferry.Migration("copy", source="src", target="dst")
    throttle = Throttle([ReplicaLag(_engine(mariadb.replica_url), limit=1.0)])
    _caught_up(throttle)
    mariadb.stop_applying()
    try:
        result = rowferry.run(
            migration, mariadb.primary_url, budget=Budget(seconds=2, throttle=throttle)
        )
        assert result.status == "stopped" and result.rows_written == 0
        assert result.reason == "throttled: replica lag unknown (limit 1)"
        monkeypatch.setattr(defaults, "THROTTLE_WAIT_SECONDS", 0.5)  # no time budget
        result = rowferry.run(migration, mariadb.primary_url, budget=Budget(throttle=throttle))
        assert result.reason.startswith("throttled: ") and _copied(mariadb) == 0
        resumer = _resume_later(mariadb, 1.0)
        budget = Budget(seconds=PATIENCE_SECONDS, throttle=throttle)
        result = rowferry.run(migration, mariadb.primary_url, chunk_size=10, budget=budget)
        resumer.join()
    finally:
        mariadb.resume_applying()
    assert result.done and result.rows_written == 30 and _copied(mariadb) == 30
    assert throttle.waited >= 1.0


COPY_JOB = (
    "from rowferry import Migration\n"
    "migration = Migration(name='copy', source='src', target='dst')\n"
)


def _rowferry(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_run_watches_a_replica_and_status_shows_the_time_and_the_reading(
    mariadb: MariaDBPair, tmp_path: Path
) -> None:
    _copy_job(mariadb)
    spec = tmp_path / "copy_job.py"
    spec.write_text(COPY_JOB)
    run = ["run", str(spec), "--source", mariadb.primary_url, "--replica", mariadb.replica_url]
    throttle = Throttle([ReplicaLag(_engine(mariadb.replica_url), limit=1.0)])
    _caught_up(throttle)
    mariadb.stop_applying()
    try:
        held = _rowferry(*run, "--time-budget", "2s", "--json")
    finally:
        mariadb.resume_applying()
    assert held.exit_code == defaults.EXIT_STOPPED, held.output
    stopped = json.loads(held.output)
    assert stopped["reason"] == "throttled: replica lag unknown (limit 1)"
    unknown = {
        "gate": "replica lag",
        "value": None,
        "limit": 1.0,
        "over": True,
        "setting": "max_replica_lag",
    }
    assert stopped["gate_readings"] == [unknown] and stopped["gate_wait_seconds"] > 0
    [row] = json.loads(_rowferry("status", "--target", mariadb.primary_url, "--json").output)
    assert row["gates"] == [unknown] and row["throttled_seconds"] > 0
    text = _rowferry("status", "--target", mariadb.primary_url).output
    assert "copy throttled " in text and "last gate readings: replica lag unknown (limit 1)" in text
    _caught_up(throttle)
    done = _rowferry(*run, "--max-replica-lag", "2", "--json")
    assert done.exit_code == defaults.EXIT_DONE, done.output
    [reading] = json.loads(done.output)["gate_readings"]
    assert reading["value"] == 0.0 and reading["limit"] == 2.0 and _copied(mariadb) == 30


def test_the_lambda_handler_watches_its_replicas(
    mariadb: MariaDBPair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rowferry.aws.context import FakeContext
    from rowferry.aws.handler import handler

    _copy_job(mariadb)
    spec = tmp_path / "copy_job.py"
    spec.write_text(COPY_JOB)
    for name in ("ROWFERRY_TARGET", "ROWFERRY_SOURCE_SECRET", "ROWFERRY_TARGET_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROWFERRY_MIGRATION", str(spec))
    monkeypatch.setenv("ROWFERRY_SOURCE", mariadb.primary_url)
    monkeypatch.setenv("ROWFERRY_REPLICAS", mariadb.replica_url)
    monkeypatch.setenv("ROWFERRY_SAFETY_MARGIN", "1")
    throttle = Throttle([ReplicaLag(_engine(mariadb.replica_url), limit=1.0)])
    _caught_up(throttle)
    mariadb.stop_applying()
    try:
        held = handler({}, FakeContext.with_timeout(4.0))
    finally:
        mariadb.resume_applying()
    assert held["status"] == "more" and held["reason"].startswith("throttled: replica lag")
    assert held["gate_readings"][0]["over"] and held["gate_wait_seconds"] > 0
    _caught_up(throttle)
    capsys.readouterr()
    done = handler({}, FakeContext.with_timeout(20.0))
    assert done["status"] == "done" and done["gate_readings"][0]["value"] == 0.0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    (emf,) = [line for line in lines if "_aws" in line and "Rows" in line]
    assert emf["ReplicaLag"] == [0.0] and emf["GatesOver"] == [0.0]


@dataclass
class _CountedLag(ReplicaLag):
    """A replica lag gate that counts its readings."""

    reads: int = 0

    def read(self) -> float | None:
        self.reads += 1
        return super().read()


def test_set_raises_a_lagging_standby_s_limit_and_the_waiting_trip_goes_on(
    postgres: PostgresPair,
) -> None:
    """The standby stays behind; only the new limit lets the trip, waiting on it without a
    time budget, go on."""
    with postgres.connect(postgres.primary_port) as conn:
        for sql in (
            "DROP TABLE IF EXISTS src, dst, rowferry_state, rowferry_quarantine",
            "CREATE TABLE src (id INT PRIMARY KEY, v TEXT)",
            "CREATE TABLE dst (id INT PRIMARY KEY, v TEXT)",
            "INSERT INTO src SELECT i, 'v' || i FROM generate_series(0, 29) AS i",
        ):
            conn.execute(sql)
    migration = rowferry.Migration("copy", source="src", target="dst")
    rowferry.run(migration, postgres.primary_url, chunk_size=10, budget=Budget(max_chunks=1))
    gate = _CountedLag(_engine(postgres.standby_url), limit=0.5)
    _caught_up(Throttle([gate]))
    postgres.stop_applying()
    primary = _engine(postgres.primary_url)

    def raise_the_limit() -> None:
        seen = gate.reads
        while gate.reads < seen + 2:  # the trip is waiting on the gate
            time.sleep(0.05)
        with primary.connect() as conn:
            control.change(conn, "copy", control.Settings(max_replica_lag=1000))

    try:
        with postgres.connect(postgres.primary_port) as conn:
            conn.execute("INSERT INTO src VALUES (30, 'late')")
        time.sleep(0.6)
        assert Throttle([gate]).read()[0].over
        changer = threading.Thread(target=raise_the_limit)
        changer.start()
        result = rowferry.run(
            migration, postgres.primary_url, chunk_size=10, budget=Budget(throttle=Throttle([gate]))
        )
        changer.join()
    finally:
        postgres.resume_applying()
    assert result.done and result.rows_done == 31
    [reading] = result.gate_readings
    assert reading.limit == 1000 and reading.value is not None and reading.value > 0.5
    assert result.gate_wait_seconds > 0


def test_a_replica_that_cannot_be_reached_holds_the_trip_and_is_refused_before_one() -> None:
    """During a trip a replica that is down counts as over its limit (the trip waits); before
    the trip, the probe says it cannot be reached."""
    from rowferry import ConnectError

    gone = ReplicaLag(_engine("mysql+pymysql://root@127.0.0.1:1/test"), limit=1.0)
    assert gone.read() is None
    assert Throttle([gone]).read()[0].over
    with pytest.raises(ConnectError, match="cannot read the gate 'replica lag'"):
        Throttle([gone]).probe()
