"""A property-based sequence of run / kill / reset / concurrent run / bad row / quarantine retry,
with the invariant checked after every step: every processed qualifying key is in the target or
in the quarantine, exactly once, and nothing past the cursor is anywhere."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import rowferry
from harness import reference
from rowferry import Budget, cursor
from rowferry.demo import order_history
from rowferry.requeue import retry_quarantined
from rowferry.state import quarantine
from rowferry.state import store as state

BROKEN: set[int] = set()


def _picky(order: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
    if order["id"] in BROKEN:
        raise ValueError("bad row injected")
    return order_history.snapshot(order, related)


MIGRATION = replace(order_history.migration, transform=_picky)
CHUNK = 15


class Trips(RuleBasedStateMachine):
    url: ClassVar[str] = ""
    keys: ClassVar[list[int]] = []

    def __init__(self) -> None:
        super().__init__()
        BROKEN.clear()
        reference.start_over(self.url)

    @rule(chunks=st.integers(1, 4))
    def run(self, chunks: int) -> None:
        rowferry.run(MIGRATION, self.url, chunk_size=CHUNK, budget=Budget(max_chunks=chunks))

    @rule(delay=st.floats(0.0, 0.25))
    def kill(self, delay: float) -> None:
        pid = os.fork()
        if pid == 0:  # the child: one trip, killed by the parent at some instant
            try:
                rowferry.run(MIGRATION, self.url, chunk_size=CHUNK)
            finally:
                os._exit(0)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    @rule()
    def reset(self) -> None:
        reference.start_over(self.url)

    @rule()
    def concurrent_runs(self) -> None:
        outcomes: list[str] = []

        def trip() -> None:
            try:
                rowferry.run(MIGRATION, self.url, chunk_size=CHUNK, budget=Budget(max_chunks=3))
                outcomes.append("ran")
            except rowferry.AlreadyRunning:
                outcomes.append("refused")

        threads = [threading.Thread(target=trip) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(outcomes) == 3 and "ran" in outcomes

    @rule(index=st.integers(0, 10_000))
    def inject_bad_row(self, index: int) -> None:
        BROKEN.add(self.keys[index % len(self.keys)])

    @rule()
    def fix_and_retry_quarantine(self) -> None:
        BROKEN.clear()
        retry_quarantined(MIGRATION, self.url)

    @invariant()
    def every_processed_key_once_in_target_or_quarantine(self) -> None:
        engine = sa.create_engine(self.url)
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT order_id FROM order_snapshots")).scalars().all()
            held = [k[0] for k in quarantine.quarantined_keys(conn, MIGRATION.name)]
            saved = state.read(conn, MIGRATION.name)
        engine.dispose()
        last = cursor.decode(saved.cursor_json) if saved else None
        processed = [k for k in self.keys if last is not None and k <= last[0]]
        assert len(stored) == len(set(stored)), "a key is in the target twice"
        assert not set(stored) & set(held), "a key is in the target and in the quarantine"
        assert sorted(stored + held) == processed


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql", "mariadb"])
def test_run_kill_reset_concurrency_bad_rows_and_retries_keep_every_key_once(db_url: str) -> None:
    reference.build(db_url, orders=150)
    Trips.url = db_url
    Trips.keys = sorted(reference.expected_snapshots(db_url))
    run_state_machine_as_test(
        Trips,
        settings=settings(
            max_examples=6,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
