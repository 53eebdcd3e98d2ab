"""The engine on the reference workload, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

import rowferry
from harness import reference
from rowferry import Budget
from rowferry.demo.order_history import migration
from rowferry.schema import resolve as schema
from rowferry.state import store as state


def _state(url: str) -> state.MigrationState:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = state.read(conn, migration.name)
    engine.dispose()
    assert found is not None
    return found


def test_reference_migration_writes_one_exact_snapshot_per_finished_order(db_url: str) -> None:
    stats = reference.build(db_url, orders=400)
    result = rowferry.run(migration, db_url, chunk_size=64)
    assert result.done and result.rows_done == stats.qualifying
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)
    saved = _state(db_url)
    assert (saved.status, saved.rows_read, saved.rows_written) == (
        "done",
        stats.qualifying,
        stats.qualifying,
    )
    assert saved.chunks == -(-stats.qualifying // 64)


def test_trips_resume_exactly_where_the_last_one_committed(db_url: str) -> None:
    stats = reference.build(db_url, orders=300)
    trips = []
    while not trips or not trips[-1].done:
        trips.append(rowferry.run(migration, db_url, chunk_size=25, budget=Budget(max_chunks=2)))
        assert len(trips) < 50
    assert all(t.status == "stopped" for t in trips[:-1])
    assert sum(t.rows_read for t in trips) == stats.qualifying
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)
    assert _state(db_url).trips == len(trips)


def test_a_finished_migration_returns_done_at_once(db_url: str) -> None:
    reference.build(db_url, orders=100)
    rowferry.run(migration, db_url)
    again = rowferry.run(migration, db_url)
    assert again.done and again.chunks == 0 and again.reason == "already done"


def test_a_budget_too_small_for_any_chunk_writes_nothing_and_says_stopped(db_url: str) -> None:
    reference.build(db_url, orders=100)
    result = rowferry.run(migration, db_url, budget=Budget(seconds=1e-9))
    assert (result.status, result.chunks) == ("stopped", 0)
    assert reference.snapshots(db_url) == {}
    assert _state(db_url).display_status == "stopped"


def test_a_trip_stopped_by_its_budget_reports_the_chunk_it_did_not_start(db_url: str) -> None:
    reference.build(db_url, orders=100)
    rowferry.run(migration, db_url, chunk_size=10, budget=Budget(max_chunks=1))
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # as if that chunk had taken one second per row
        conn.execute(sa.text(f"UPDATE {state.STATE_TABLE} SET seconds_per_row = 1.0"))
    engine.dispose()
    stopped = rowferry.run(migration, db_url, chunk_size=20, budget=Budget(seconds=0.5))
    assert (stopped.status, stopped.chunks) == ("stopped", 0)
    assert stopped.next_chunk_seconds is not None
    assert stopped.next_chunk_seconds >= 20 * 1.0  # 20 rows at the stored rate, and a margin
    assert "next chunk needs" in stopped.reason
    finished = rowferry.run(migration, db_url)
    assert finished.done and finished.next_chunk_seconds is None


def test_progress_is_reported_after_every_committed_chunk(db_url: str) -> None:
    stats = reference.build(db_url, orders=200)
    events: list[rowferry.ChunkDone] = []
    rowferry.run(migration, db_url, chunk_size=30, on_chunk=events.append)
    assert [e.rows_done for e in events] == [
        min(30 * (i + 1), stats.qualifying) for i in range(len(events))
    ]
    assert events[-1].rows_total == stats.qualifying


def test_cross_database_run_from_mariadb_to_postgresql(make_db) -> None:  # type: ignore[no-untyped-def]
    source, target = make_db("mariadb"), make_db("postgresql")
    stats = reference.build(source, orders=300)
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        from rowferry.demo import workload

        workload.create_target_schema(conn)
    engine.dispose()
    result = rowferry.run(migration, source, target, chunk_size=50)
    assert result.done and result.rows_done == stats.qualifying
    assert reference.snapshots(target) == reference.expected_snapshots(source)
    assert not sa.inspect(sa.create_engine(source)).has_table(state.STATE_TABLE)


def test_cross_database_run_from_postgresql_to_sqlite(make_db) -> None:  # type: ignore[no-untyped-def]
    source, target = make_db("postgresql"), make_db("sqlite")
    reference.build(source, orders=150)
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        from rowferry.demo import workload

        workload.create_target_schema(conn)
    engine.dispose()
    assert rowferry.run(migration, source, target, chunk_size=40).done
    assert reference.snapshots(target) == reference.expected_snapshots(source)


READS = ("SELECT", "SET STATEMENT group_concat_max_len = 4294967295 FOR SELECT")


def test_one_query_per_relation_per_chunk_never_per_row(db_url: str) -> None:
    stats = reference.build(db_url, orders=300)
    engine, statements = _recording_engine(db_url)
    direct: list[bytes] = []  # MySQL: the multi-row INSERTs go through the driver's own cursor
    if engine.dialect.name == "mysql":
        sa.event.listen(engine, "connect", lambda dbapi, _: _record_cursor(dbapi, direct))
    result = rowferry.run(migration, engine, chunk_size=50)
    engine.dispose()
    chunks = -(-stats.qualifying // 50)
    assert result.done and result.chunks == chunks
    for table in ("patients", "order_items", "prescriptions", "payments", "order_status_events"):
        reads = [s for s in statements if s.lstrip().startswith(READS) and f"FROM {table}" in s]
        assert len(reads) == chunks, (table, len(reads))
        packed = [
            s for s in reads if "JSON_ARRAYAGG" in s
        ]  # MariaDB: packed (rowferry.chunks.packed)
        assert len(packed) == (chunks if db_url.startswith("mysql") and table != "patients" else 0)
    root_reads = [s for s in statements if "FROM orders" in s and "ORDER BY orders.id" in s]
    assert len(root_reads) == chunks and not any("OFFSET" in s for s in statements)
    writes = [s for s in statements if s.startswith("INSERT INTO order_snapshots")]
    assert len(writes) == (chunks if db_url.startswith("sqlite") else 0)  # PostgreSQL: COPY
    inserts = [s for s in direct if s.replace(b"`", b"").startswith(b"INSERT INTO order_snapshots")]
    assert len(inserts) == (chunks if db_url.startswith("mysql") else 0)


def test_a_trip_spends_two_statements_on_its_state_besides_one_checkpoint_per_chunk(
    db_url: str,
) -> None:
    """The locking read (which also probes that rowferry's tables are complete) and the lease
    UPDATE; the last chunk's checkpoint also ends the trip (no UPDATE of its own, no catalog
    queries). Before each chunk but the first, the read of the two columns written from
    outside (pause, cancel, settings: :mod:`rowferry.state.control`)."""
    stats = reference.build(db_url, orders=300)
    rowferry.run(migration, db_url, chunk_size=50, budget=Budget(max_chunks=1))
    engine, statements = _recording_engine(db_url)
    result = rowferry.run(migration, engine, chunk_size=50)
    engine.dispose()
    assert result.done and result.rows_read == stats.qualifying - 50
    empty_last_read = result.rows_read % 50 == 0  # then a read that finds nothing ends it
    on_state = [s for s in statements if state.STATE_TABLE in s]
    told = [s for s in on_state[2:] if s.startswith("SELECT")]
    assert len(told) == result.chunks + empty_last_read - 1, on_state
    assert len(set(told)) == 1 and "rowferry_state.control" in told[0]
    assert len(on_state) == 2 + result.chunks + empty_last_read + len(told), on_state
    assert "rowferry_quarantine" in on_state[0]
    assert "FOR UPDATE" in on_state[0] or db_url.startswith("sqlite")
    assert not any(state.STATE_TABLE in s for s in statements if s.startswith(("SHOW", "DESC")))
    checkpoints = set([s for s in on_state[2:] if s.startswith("UPDATE")][: result.chunks])
    assert len(checkpoints) == 1  # the last chunk's checkpoint is the same statement
    saved = _state(db_url)
    assert (saved.status, saved.owner, saved.rows_total) == ("done", None, stats.qualifying)


def test_a_new_migration_takes_its_lease_with_the_insert_of_its_row(db_url: str) -> None:
    """A migration never run before: the locking read finds no row, and one INSERT creates it
    already leased (token 1, this trip's owner); no second read, no lease UPDATE."""
    reference.build(db_url, orders=300)
    with sa.create_engine(db_url).connect() as conn:
        state.ensure_table(conn)  # the tables exist: only this migration is new
    engine, statements = _recording_engine(db_url)
    seen: list[state.MigrationState] = []
    result = rowferry.run(
        migration,
        engine,
        chunk_size=50,
        budget=Budget(max_chunks=1),
        on_chunk=lambda done: seen.append(_state(db_url)),
    )
    engine.dispose()
    assert result.chunks == 1
    on_state = [s for s in statements if state.STATE_TABLE in s]
    assert [s.split()[0] for s in on_state] == ["SELECT", "INSERT", "UPDATE", "UPDATE"], on_state
    during = seen[0]  # the chunk's checkpoint, under the lease the INSERT took
    assert (during.status, during.token, during.trips, during.chunks) == ("running", 1, 1, 1)
    assert during.owner is not None and during.lease_until is not None
    saved = _state(db_url)
    assert (saved.status, saved.token, saved.owner) == ("stopped", 1, None)


def _recording_engine(url: str) -> tuple[sa.Engine, list[str]]:
    """An engine, and the list of the statements it sends through SQLAlchemy."""
    engine = sa.create_engine(url)
    statements: list[str] = []
    sa.event.listen(
        engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, params, context, many: statements.append(sql),
    )
    return engine, statements


def _record_cursor(dbapi_connection: Any, sent: list[bytes]) -> None:
    """Make the PyMySQL connection's cursors record what they execute."""
    base = dbapi_connection.cursorclass

    class Recording(base):  # type: ignore[misc, valid-type]
        def execute(self, query: Any, args: Any = None) -> Any:
            sent.append(query if isinstance(query, bytes) else str(query).encode())
            return super().execute(query, args)

    dbapi_connection.cursorclass = Recording


def test_a_state_table_from_an_older_version_is_upgraded_in_place(db_url: str) -> None:
    stats = reference.build(db_url, orders=100)
    rowferry.run(migration, db_url, chunk_size=20, budget=Budget(max_chunks=1))
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # what a state table written before the quarantine looked like
        conn.exec_driver_sql("ALTER TABLE rowferry_state DROP COLUMN rows_quarantined")
    engine.dispose()
    result = rowferry.run(migration, db_url, chunk_size=20)
    assert result.done and result.rows_done == stats.qualifying
    assert _state(db_url).rows_quarantined == 0


def test_a_missing_quarantine_table_is_created_when_the_trip_takes_its_lease(
    db_url: str,
) -> None:
    """The lease's read names the quarantine table's columns: when it fails, the tables are
    made complete (here: the quarantine table dropped after the state table was made)."""
    stats = reference.build(db_url, orders=100)
    rowferry.run(migration, db_url, chunk_size=20, budget=Budget(max_chunks=1))
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE rowferry_quarantine")
    result = rowferry.run(migration, db_url, chunk_size=20)
    assert result.done and result.rows_done == stats.qualifying
    assert sa.inspect(engine).has_table("rowferry_quarantine")
    engine.dispose()


def test_a_slow_rate_stored_by_an_earlier_trip_does_not_stop_the_next_trips(db_url: str) -> None:
    stats = reference.build(db_url, orders=200)
    rowferry.run(migration, db_url, chunk_size=10, budget=Budget(max_chunks=1))
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # as if that chunk had taken one second per row
        conn.execute(sa.text(f"UPDATE {state.STATE_TABLE} SET seconds_per_row = 1.0"))
    engine.dispose()
    events: list[rowferry.ChunkDone] = []
    result = rowferry.run(
        migration, db_url, chunk_size=50, budget=Budget(seconds=5), on_chunk=events.append
    )
    assert result.rows_read > 0
    assert 1 <= events[0].rows < 50  # cut to what the stored rate says fits in 5 s
    while not result.done:
        result = rowferry.run(migration, db_url, chunk_size=50, budget=Budget(seconds=5))
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)
    assert _state(db_url).rows_read == stats.qualifying


def test_reflection_reads_only_what_rowferry_uses(db_url: str) -> None:
    """Columns, keys and indexes of the seven tables; not their foreign keys, check constraints,
    comments or options. On every database one catalog statement of rowferry's own
    (rowferry.schema.catalog; SQLAlchemy's reflection sends 12 catalog queries on PostgreSQL, or 8
    without what rowferry does not use, and one SHOW CREATE TABLE or five PRAGMAs per table on
    MariaDB and SQLite), then the filter's probe."""
    reference.build(db_url, orders=20)
    engine, statements = _recording_engine(db_url)
    with engine.connect() as conn:
        statements.clear()  # what connecting sent
        source, target = schema.resolve(conn, conn, migration)
    engine.dispose()
    assert len(statements) == 2 and "LIMIT 0" in statements[1], statements
    assert [c.name for c in source.key] == ["id"] and target.unique_key == ("order_id",)
    assert len(source.relations) == 5 and source.table.c.total.type.scale == 2
    if db_url.startswith("postgresql"):
        catalog = [s for s in statements if "pg_catalog" in s]
        assert len(catalog) == 1, catalog
    if db_url.startswith("sqlite"):
        assert not any("foreign_key_list" in s for s in statements), statements
