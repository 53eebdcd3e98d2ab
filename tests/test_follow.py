"""Following a live source after the backlog (``Migration(follow=...)``), on every database.

Orders reach a final status behind the cursor, new ones arrive final, final ones move to
another final status: each strategy and policy is checked against the source and target as
plain SQL reads them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

import rowferry
from rowferry import Changes, ConfigError, Migration, SchemaError, Sweep, Target
from rowferry.plan import plan

FINAL = ("dispensed", "cancelled")
KEEP = Target("f_snapshots", "order_id", "skip")
REPLACE = Target("f_snapshots", "order_id", "update")
_MOMENT = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
metadata = sa.MetaData()
orders = sa.Table(
    "f_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("updated_at", _MOMENT, nullable=False, index=True),
    sa.Column("seen_at", _MOMENT, nullable=True),  # no index
)
history = sa.Table(
    "f_history",
    metadata,
    sa.Column("order_id", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("version", _MOMENT, nullable=False),
    sa.UniqueConstraint("order_id", "version", name="uq_f_history_version"),
)
snapshots = sa.Table(
    "f_snapshots",
    metadata,
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(20), nullable=False),
)


@pytest.fixture
def shop(engine: sa.Engine) -> Iterator[sa.Engine]:
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            orders.insert(),
            [{"id": i, "status": "new", "updated_at": _ago(3600)} for i in range(1, 41)]
            + [{"id": i, "status": FINAL[i % 2], "updated_at": _ago(3600)} for i in range(41, 61)],
        )
    yield engine
    metadata.drop_all(engine)


def _ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds)


def _change(engine: sa.Engine, order_id: int, status: str, *, new: bool = False) -> None:
    """A change as the application makes it: its time is now (the lag is 0 in these tests)."""
    values = {"status": status, "updated_at": _ago(0)}
    with engine.begin() as conn:
        if new:
            conn.execute(orders.insert().values(id=order_id, **values))
        else:
            conn.execute(orders.update().where(orders.c.id == order_id).values(**values))


def _snapshot(row: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": row["id"], "status": row["status"]}


def _version(row: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": row["id"], "status": row["status"], "version": row["updated_at"]}


def _migration(follow: Any, target: Target, transform: Any = _snapshot) -> Migration:
    return Migration(
        name="follow-orders",
        source="f_orders",
        where="status IN :final",
        params={"final": list(FINAL)},
        transform=transform,
        target=target,
        follow=follow,
    )


def _final_orders(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, status FROM f_orders"))
        return {i: s for i, s in rows if s in FINAL}


def _rows(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(
            tuple(r) for r in conn.execute(sa.text(f"SELECT order_id, status FROM {table}"))
        )


def _trip(migration: Migration, engine: sa.Engine) -> rowferry.RunResult:
    return rowferry.run(migration, engine, chunk_size=7)


def test_changes_capture_late_rows_and_replace_snapshots(shop: sa.Engine) -> None:
    migration = _migration(
        Changes("updated_at", lag=0), Target("f_snapshots", "order_id", "update")
    )
    first = _trip(migration, shop)
    assert first.status == "caught_up" and not first.done
    assert dict(_rows(shop, "f_snapshots")) == _final_orders(shop)
    _change(shop, 2, "dispensed")  # long behind the cursor
    _change(shop, 41, "dispensed")  # final -> another final status
    _change(shop, 99, "cancelled", new=True)
    _change(shop, 3, "packed")  # not final: stays out
    second = _trip(migration, shop)
    assert second.status == "caught_up"
    assert dict(_rows(shop, "f_snapshots")) == _final_orders(shop)
    assert dict(_rows(shop, "f_snapshots"))[41] == "dispensed"


def test_keep_leaves_the_first_snapshot(shop: sa.Engine) -> None:
    migration = _migration(Changes("updated_at", lag=0), KEEP)
    _trip(migration, shop)
    before = dict(_rows(shop, "f_snapshots"))[41]
    _change(shop, 41, "dispensed" if before == "cancelled" else "cancelled")
    _change(shop, 5, "cancelled")
    _trip(migration, shop)
    found = dict(_rows(shop, "f_snapshots"))
    assert found[41] == before and found[5] == "cancelled"


def test_append_writes_a_version_per_change(shop: sa.Engine) -> None:
    target = Target("f_history", ["order_id", "version"], "skip", source_key="order_id")
    migration = _migration(Changes("updated_at", lag=0), target, _version)
    _trip(migration, shop)
    _change(shop, 42, "cancelled" if 42 % 2 else "dispensed")
    _change(shop, 42, "dispensed")
    _trip(migration, shop)
    _trip(migration, shop)  # nothing new: no duplicate version
    versions = [s for i, s in _rows(shop, "f_history") if i == 42]
    assert len(versions) == 2 and len(_rows(shop, "f_history")) == 21


def test_a_trip_with_nothing_new_is_a_handful_of_statements(shop: sa.Engine) -> None:
    migration = _migration(Changes("updated_at", lag=0), KEEP)
    _trip(migration, shop)
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(shop, "before_cursor_execute", listen)
    try:
        result = _trip(migration, shop)
    finally:
        sa.event.remove(shop, "before_cursor_execute", listen)
    assert result.status == "caught_up" and result.rows_read == 0
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "DELETE"))]
    assert not writes, writes
    # the catalog, the filter's check, the state row read and leased, the clock, the changes
    # (none), the lease released
    assert len(statements) <= 7, statements


def test_sweep_writes_the_qualifying_rows_the_target_lacks(shop: sa.Engine) -> None:
    target = Target("f_snapshots", "order_id", "skip")
    migration = _migration(Sweep(keys=10), target)
    assert _trip(migration, shop).status == "caught_up"
    _change(shop, 1, "cancelled")
    _change(shop, 98, "dispensed", new=True)
    assert _trip(migration, shop).status == "caught_up"
    assert dict(_rows(shop, "f_snapshots")) == _final_orders(shop)


def test_following_is_refused_before_any_write_when_it_cannot_work(shop: sa.Engine) -> None:
    with pytest.raises(ConfigError, match="on_conflict"):
        _migration(Changes("updated_at"), Target("f_snapshots", "order_id"))
    with pytest.raises(SchemaError, match="date-time column"):
        _trip(_migration(Changes("status"), Target("f_snapshots", "order_id", "skip")), shop)
    assert _rows(shop, "f_snapshots") == []


def test_plan_says_how_it_follows_and_warns_of_a_change_column_without_an_index(
    shop: sa.Engine,
) -> None:
    indexed = plan(_migration(Changes("updated_at", lag=30), KEEP), shop)
    assert indexed.follow.startswith("changes in f_orders.updated_at (utc), read up to 30 s")
    assert not [w for w in indexed.warnings if w.startswith("follow:")]
    bare = plan(_migration(Changes("seen_at"), KEEP), shop)
    assert [w for w in bare.warnings if "no index starts with f_orders.seen_at" in w]
    assert plan(_migration(None, Target("f_snapshots", "order_id")), shop).follow == "off"


def test_a_chunk_of_changes_from_a_run_that_lost_its_lease_commits_nothing(
    engine: sa.Engine,
) -> None:
    """The changes' checkpoint is the same compare-and-set as the backlog's: a run whose lease
    another run took (a new token) cannot move the position or end the migration."""
    from rowferry.engine import follow
    from rowferry.errors import CheckpointConflict
    from rowferry.state import store
    from rowferry.state.identity import Identity

    who = Identity("f_orders", (("id", "INTEGER"),), None, {}, "f_snapshots", "changes")
    until = store.utcnow() + dt.timedelta(seconds=60)
    with engine.connect() as conn:
        first = store.begin_trip(conn, "fenced", who, "run-a", until, "db")
        position = follow.Position("changes", since=store.utcnow())
        first = store.save_follow(conn, first, position.to_json())
        expired = dt.datetime(2000, 1, 1)
        conn.execute(sa.text("UPDATE rowferry_state SET lease_until = :t"), {"t": expired})
        conn.commit()
        second = store.begin_trip(conn, "fenced", who, "run-b", until, "db")
        assert second.token == first.token + 1
        with pytest.raises(CheckpointConflict):
            follow.changes_checkpoint(
                conn, first, (store.utcnow(), 7), (1, 1, 0), None, until, True
            )
        conn.rollback()
        now = store.read(conn, "fenced")
        conn.rollback()
    assert now is not None and now.status == "running" and now.owner == "run-b"
    assert follow.Position.from_json(now.follow_json) == position


def test_a_sweep_into_another_database_asks_the_target_for_each_range(
    shop: sa.Engine, make_db: Any
) -> None:
    target = sa.create_engine(make_db("sqlite"))
    try:
        snapshots.to_metadata(sa.MetaData()).create(target)
        migration = _migration(Sweep(keys=10), Target("f_snapshots", "order_id", "skip"))
        assert rowferry.run(migration, shop, target, chunk_size=7).status == "caught_up"
        _change(shop, 4, "dispensed")
        _change(shop, 97, "cancelled", new=True)
        assert rowferry.run(migration, shop, target, chunk_size=7).status == "caught_up"
        assert dict(_rows(target, "f_snapshots")) == _final_orders(shop)
    finally:
        target.dispose()


@pytest.mark.parametrize("dialect_name", ["sqlite"])
def test_the_command_line_says_caught_up_exits_0_and_status_shows_it(db_url: str) -> None:
    from click.testing import CliRunner

    from harness import reference
    from rowferry.cli.main import main
    from rowferry.demo import order_history

    reference.build(db_url, orders=60)
    run = ["run", order_history.__file__, "--name", "order-history-live", "--source", db_url]
    first = CliRunner().invoke(main, [*run, "-q"])
    assert first.exit_code == 0, first.output
    assert "order-history-live: caught up, run again to capture later changes" in first.output
    status = CliRunner().invoke(main, ["status", "--target", db_url])
    assert "caught_up" in status.output
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)


def test_a_second_run_is_refused_while_one_follows(shop: sa.Engine) -> None:
    """While a trip follows the changes (holding the lease), another run of the migration is
    refused with AlreadyRunning and writes nothing; the first then catches up."""
    import threading

    from rowferry import AlreadyRunning

    migration = _migration(Changes("updated_at", lag=0), REPLACE)
    _trip(migration, shop)
    for order_id in (6, 7, 8):
        _change(shop, order_id, "dispensed")
    inside, release = threading.Event(), threading.Event()

    def hold(progress: Any) -> None:  # before the first chunk of changes
        inside.set()
        release.wait(60)

    results: list[rowferry.RunResult] = []
    first = threading.Thread(
        target=lambda: results.append(rowferry.run(migration, shop, chunk_size=2, stop_when=[hold]))
    )
    first.start()
    try:
        assert inside.wait(60)
        with pytest.raises(AlreadyRunning):
            rowferry.run(migration, shop, chunk_size=2)
    finally:
        release.set()
        first.join(60)
    assert results and results[0].status == "caught_up"
    assert dict(_rows(shop, "f_snapshots")) == _final_orders(shop)
