"""The proof on a live database: while a shop changes orders (finishing old ones behind the
cursor, adding new ones, moving final ones to another final status) scheduled trips of the live
order-history migration run, some killed at a random instant; at the end every final order is
in the history exactly once with its current status, and nothing else is there
(:mod:`tests.live`, whose longer run is the soak command).
"""

from __future__ import annotations

import pytest

from tests.live import soak


@pytest.mark.parametrize("dialect_name", ["mariadb", "postgresql"], indirect=True)
def test_every_order_that_reaches_a_final_status_is_in_the_history_exactly_once(
    db_url: str,
) -> None:
    done = soak(db_url, orders=1_500, rate=25.0, seconds=12.0, interval=0.7, kill_share=0.3)
    assert done.changes.finished and done.changes.moved and done.changes.arrived
    assert done.trips.killed, "no trip was killed: raise the kill share or the trips"
    found = done.found
    assert (found.missing, found.stale, found.extra, found.duplicated) == ([], [], [], [])
    assert found.snapshots == found.final
