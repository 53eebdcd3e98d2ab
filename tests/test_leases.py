"""One run at a time: a live lease refuses a second run; a dead owner's lease is taken over."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

import rowferry
from harness import reference
from rowferry.demo.order_history import migration
from rowferry.state import store


def _set_lease(url: str, owner: str, until: dt.datetime) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            store.state_table.update().values(status="running", owner=owner, lease_until=until)
        )
    engine.dispose()


def _first_chunk(url: str) -> None:
    reference.build(url, orders=100)
    rowferry.run(migration, url, chunk_size=10, budget=rowferry.Budget(max_chunks=1))


def test_a_live_lease_of_another_run_refuses_a_second_run(db_url: str) -> None:
    _first_chunk(db_url)
    until = store.utcnow() + dt.timedelta(minutes=5)
    _set_lease(db_url, "other-host:4242:abc", until)
    with pytest.raises(rowferry.AlreadyRunning, match=r"already running \(owner other-host:4242"):
        rowferry.run(migration, db_url)


def test_an_expired_lease_is_taken_over(db_url: str) -> None:
    _first_chunk(db_url)
    _set_lease(db_url, "other-host:4242:abc", store.utcnow() - dt.timedelta(seconds=1))
    assert rowferry.run(migration, db_url).done


def test_the_lease_of_a_dead_process_on_this_host_is_taken_over(db_url: str) -> None:
    import socket
    import subprocess

    _first_chunk(db_url)
    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = f"{socket.gethostname()}:{dead.pid}:abc"
    _set_lease(db_url, owner, store.utcnow() + dt.timedelta(minutes=5))
    assert rowferry.run(migration, db_url).done


def test_a_checkpoint_after_another_run_took_over_fails_instead_of_writing(db_url: str) -> None:
    reference.build(db_url, orders=200)
    engine = sa.create_engine(db_url)

    def take_over(event: rowferry.ChunkDone) -> None:
        with engine.begin() as conn:  # another run bumps the fencing token
            conn.execute(store.state_table.update().values(token=store.state_table.c.token + 1))

    with pytest.raises(rowferry.CheckpointConflict, match="another run took over"):
        rowferry.run(migration, db_url, chunk_size=10, on_chunk=take_over)
    with engine.connect() as conn:
        written = conn.exec_driver_sql("SELECT COUNT(*) FROM order_snapshots").scalar()
    engine.dispose()
    assert written == 10  # the first chunk committed; the fenced second one did not


def test_a_run_that_lost_its_lease_stops_when_its_writes_meet_its_successors_rows(
    db_url: str,
) -> None:
    reference.build(db_url, orders=200)
    taken_over: list[rowferry.RunResult] = []

    def successor_takes_over(event: rowferry.ChunkDone) -> None:
        if not taken_over:  # this run stalls: its lease expires, another run does everything
            _set_lease(db_url, "stalled-host:1:abc", store.utcnow() - dt.timedelta(seconds=1))
            taken_over.append(rowferry.run(migration, db_url, chunk_size=10))

    with pytest.raises(rowferry.CheckpointConflict, match="another run took over"):
        rowferry.run(migration, db_url, chunk_size=10, on_chunk=successor_takes_over)
    assert taken_over[0].done
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)
