"""The replicated servers the throttling tests stand on: they start, replicate, and lag for real
when the replica stops applying (:mod:`tests.replicas`)."""

from __future__ import annotations

import time

from tests.replicas import mariadb_pair, postgres_pair

#: how long a replica may take to apply one statement once it applies again
CATCH_UP_SECONDS = 60.0


def _until(check: object) -> bool:
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_mariadb_replica_falls_behind_while_it_does_not_apply_and_catches_up_after() -> None:
    with mariadb_pair() as pair:
        with pair.connect(pair.primary_port) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE rowferry.t (id INT PRIMARY KEY)")
        assert _until(lambda: pair.on_replica("SHOW TABLES FROM rowferry LIKE 't'"))
        pair.stop_applying()
        with pair.connect(pair.primary_port) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO rowferry.t VALUES (1)")
        status = pair.on_replica("SELECT COUNT(*) FROM rowferry.t")
        assert status == [(0,)]  # the row waits in the relay log
        pair.resume_applying()
        assert _until(lambda: pair.on_replica("SELECT COUNT(*) FROM rowferry.t") == [(1,)])


def test_a_postgresql_standby_falls_behind_while_replay_is_paused_and_catches_up_after() -> None:
    with postgres_pair() as pair:
        with pair.connect(pair.primary_port) as conn:
            conn.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        assert _until(lambda: pair.on_standby("SELECT to_regclass('t') IS NOT NULL")[0][0])
        pair.stop_applying()
        with pair.connect(pair.primary_port) as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            behind = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication"
            ).fetchall()
        assert len(behind) == 1 and behind[0][0] > 0  # WAL sent, not replayed
        assert pair.on_standby("SELECT COUNT(*) FROM t") == [(0,)]
        pair.resume_applying()
        assert _until(lambda: pair.on_standby("SELECT COUNT(*) FROM t") == [(1,)])
