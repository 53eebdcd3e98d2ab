"""Transient failures: the server kills the connection mid-chunk, or a lock wait times out; the
chunk is rolled back and retried after reconnecting, and the target is still exactly once."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

import rowferry
from harness import reference
from rowferry.demo import order_history

SERVERS = ["mariadb", "postgresql"]


def kill_other_connections(url: str) -> int:
    """Kill, from the server's side, every connection to this database but our own."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    database = sa.make_url(url).database
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).scalar()
        else:
            ids = (
                conn.execute(
                    sa.text(
                        "SELECT ID FROM information_schema.PROCESSLIST "
                        "WHERE DB = :db AND ID <> CONNECTION_ID()"
                    ),
                    {"db": database},
                )
                .scalars()
                .all()
            )
            for connection_id in ids:
                conn.exec_driver_sql(f"KILL CONNECTION {int(connection_id)}")
            killed = len(ids)
    engine.dispose()
    return int(killed or 0)


def _killing_transform(url: str, at: set[int]) -> Any:
    """The reference transform, which kills the run's own connection when it meets these ids."""

    def transform(order: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
        if order["id"] in at:
            at.discard(order["id"])
            assert kill_other_connections(url) >= 1
        return order_history.snapshot(order, related)

    return transform


@pytest.mark.parametrize("dialect_name", SERVERS)
def test_connection_killed_by_the_server_mid_chunk_is_retried(db_url: str) -> None:
    reference.build(db_url, orders=400)
    keys = sorted(reference.expected_snapshots(db_url))
    at = {keys[5], keys[70], keys[150]}
    migration = replace(order_history.migration, transform=_killing_transform(db_url, at))
    result = rowferry.run(migration, db_url, chunk_size=50)
    assert result.done and result.retries == 3 and not at
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)


@pytest.mark.parametrize("dialect_name", SERVERS)
def test_connection_killed_between_chunks_is_retried(db_url: str) -> None:
    reference.build(db_url, orders=300)
    kills = {2, 4}

    def on_chunk(event: rowferry.ChunkDone) -> None:
        chunk = event.rows_done // 30
        if chunk in kills:
            kills.discard(chunk)
            kill_other_connections(db_url)

    result = rowferry.run(order_history.migration, db_url, chunk_size=30, on_chunk=on_chunk)
    assert result.done and result.retries == 2
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)


class _ReleaseOnRetry(logging.Handler):
    """Ends the blocking transaction when the trip logs that it will retry."""

    def __init__(self, blocker: sa.Connection) -> None:
        super().__init__(logging.WARNING)
        self.blocker = blocker
        self.released = False

    def emit(self, record: logging.LogRecord) -> None:
        if "retry" in record.getMessage() and not self.released:
            self.released = True
            self.blocker.rollback()


@pytest.mark.parametrize("dialect_name", SERVERS)
def test_a_lock_wait_timeout_is_retried(db_url: str) -> None:
    reference.build(db_url, orders=100)
    rowferry.run(
        order_history.migration, db_url, chunk_size=20, budget=rowferry.Budget(max_chunks=1)
    )
    if db_url.startswith("mysql"):
        wait = "SET SESSION innodb_lock_wait_timeout = 1"
    else:
        wait = "SET lock_timeout = '1s'"
    engine = sa.create_engine(db_url)
    sa.event.listen(engine, "connect", lambda dbapi, _: _run(dbapi, wait))
    blocker = sa.create_engine(db_url).connect()
    blocker.exec_driver_sql("SELECT * FROM rowferry_state FOR UPDATE")  # held until rolled back
    handler = _ReleaseOnRetry(blocker)
    logging.getLogger("rowferry").addHandler(handler)
    try:
        result = rowferry.run(order_history.migration, engine, chunk_size=20)
    finally:
        logging.getLogger("rowferry").removeHandler(handler)
        blocker.close()
        engine.dispose()
    assert result.done and result.retries >= 1 and handler.released
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)


def _run(dbapi_connection: Any, sql: str) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(sql)
    cursor.close()
    dbapi_connection.commit()


@pytest.mark.parametrize("dialect_name", SERVERS)
def test_retries_are_bounded_and_the_error_is_recorded(db_url: str) -> None:
    reference.build(db_url, orders=100)

    def always_kill(order: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
        kill_other_connections(db_url)
        return order_history.snapshot(order, related)

    migration = replace(order_history.migration, transform=always_kill)
    with pytest.raises(rowferry.TransientError):
        rowferry.run(migration, db_url, chunk_size=10)
    assert reference.snapshots(db_url) == {}


def test_a_permanent_error_is_recorded_and_the_next_run_resumes_after_the_fix(db_url: str) -> None:
    stats = reference.build(db_url, orders=200)
    engine = sa.create_engine(db_url)

    def break_target(event: rowferry.ChunkDone) -> None:
        if event.rows_done == 40:  # after two chunks: the target loses a column the rows need
            with engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE order_snapshots RENAME COLUMN status TO state")

    with pytest.raises(rowferry.MigrationFailed, match="rejected every row"):
        rowferry.run(order_history.migration, db_url, chunk_size=20, on_chunk=break_target)
    with engine.connect() as conn:
        saved = rowferry.state.store.read(conn, order_history.migration.name)
    assert saved is not None and saved.display_status == "failed" and saved.rows_read == 40
    assert "rejected every row" in (saved.error or "")
    with engine.begin() as conn:  # the fix
        conn.exec_driver_sql("ALTER TABLE order_snapshots RENAME COLUMN state TO status")
    engine.dispose()
    result = rowferry.run(order_history.migration, db_url, chunk_size=20)
    assert (
        result.done
        and result.rows_done == stats.qualifying
        and result.rows_read == (stats.qualifying - 40)
    )
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)
