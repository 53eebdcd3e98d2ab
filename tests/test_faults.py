"""Faults on MariaDB and PostgreSQL, through the harness of ``tests/faults.py``: trips killed with
SIGKILL at 200 random instants, 2, 4 and 8 trips of one migration started at once, and a trip
that stalls past its lease. Whatever happens, no row is lost, duplicated or changed: the target
ends equal to one uninterrupted run. ``python -m bench.soak`` runs the same at a larger scale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

import rowferry
from harness import faults, reference

SERVERS = ["mariadb", "postgresql"]
ORDERS = 200  # 120 of them qualify: 12 chunks
CHUNK = 10
KILLS = 200
SEED = 20261126
REFUSAL_SECONDS = 10.0  # generous: 8 trips on 2 cores are all refused in about 1 s

MakeDb = Callable[[str], str]


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def workload(server: str, make_db: MakeDb) -> str:
    """A fresh database of this server with the reference workload (and no rowferry state)."""
    url = make_db(server)
    reference.build(url, orders=ORDERS)
    return url


def test_sigkill_at_200_random_instants_loses_duplicates_and_changes_no_row(workload: str) -> None:
    baseline = faults.uninterrupted(workload, chunk_size=CHUNK)
    assert baseline.snapshots == reference.expected_snapshots(workload)

    tally = faults.kill_and_resume(workload, baseline, kills=KILLS, seed=SEED, chunk_size=CHUNK)

    assert tally.kills == KILLS
    assert (tally.rows_lost, tally.rows_duplicated, tally.rows_different) == (0, 0, 0)
    assert tally.completions >= 3, "completed trips are compared with the baseline"
    assert tally.kills_after_progress >= 10, "kills must land after commits too"
    assert tally.kills_in_chunks >= 20, "kills must land inside the chunk loop too"


@pytest.mark.parametrize("runs", [2, 4, 8])
def test_first_trips_of_a_new_migration_started_at_once_let_one_take_the_lease(
    workload: str, runs: int
) -> None:
    tally = faults.contend(
        workload,
        runs,
        chunk_size=CHUNK,
        chunks_per_trip=1,
        rounds=1,
        refusal_timeout=REFUSAL_SECONDS,
    )
    assert (tally.rounds, tally.refused, tally.chunks) == (1, runs - 1, 1)


@pytest.mark.parametrize("runs", [2, 4, 8])
def test_trips_started_at_once_make_progress_one_at_a_time_until_done(
    workload: str, runs: int
) -> None:
    under_way = rowferry.run(
        faults.MIGRATION, workload, chunk_size=CHUNK, budget=rowferry.Budget(max_chunks=1)
    )
    assert under_way.status == "stopped"

    tally = faults.contend(
        workload, runs, chunk_size=CHUNK, chunks_per_trip=4, refusal_timeout=REFUSAL_SECONDS
    )

    assert tally.done and tally.rounds >= 3
    assert tally.refused == tally.runs - tally.rounds, "one trip per round, the others refused"
    assert reference.snapshots(workload) == reference.expected_snapshots(workload)


def test_a_trip_stalled_between_chunks_past_its_lease_fails_with_checkpoint_conflict(
    workload: str,
) -> None:
    stall = faults.stall_past_lease(workload, chunk_size=CHUNK, inside_chunk=False)

    assert stall.takeover.done
    assert (stall.stalled.code, stall.stalled.raised) == (1, "CheckpointConflict")
    assert stall.after == stall.before_resume, "the stalled trip committed nothing"
    assert reference.snapshots(workload) == reference.expected_snapshots(workload)


def test_a_trip_stalled_inside_a_chunk_past_its_lease_stops_when_its_writes_meet_the_new_rows(
    workload: str,
) -> None:
    stall = faults.stall_past_lease(workload, chunk_size=CHUNK, inside_chunk=True)

    assert stall.takeover.done
    assert (stall.stalled.code, stall.stalled.raised) == (1, "CheckpointConflict")
    assert stall.after == stall.before_resume, "the stalled trip committed nothing"
    assert reference.snapshots(workload) == reference.expected_snapshots(workload)


def test_a_trip_stalled_inside_a_chunk_that_overwrites_is_fenced_at_its_checkpoint(
    workload: str,
) -> None:
    target = dataclasses.replace(faults.MIGRATION.target, on_conflict="update")
    overwriting = dataclasses.replace(faults.MIGRATION, target=target)

    stall = faults.stall_past_lease(
        workload, chunk_size=CHUNK, inside_chunk=True, migration=overwriting
    )

    assert stall.takeover.done
    assert (stall.stalled.code, stall.stalled.raised) == (1, "CheckpointConflict")
    assert stall.after == stall.before_resume, "the stalled trip committed nothing"
    assert reference.snapshots(workload) == reference.expected_snapshots(workload)
