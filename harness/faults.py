"""Fault injection shared by ``tests/test_faults.py`` and the soak (``python -m bench.soak``).

Three faults, each against a real database that holds the reference workload
(:mod:`harness.reference`) and the order-history migration:

- :func:`kill_and_resume`: trips are killed with SIGKILL at random instants spread over the
  duration of one whole run (measured again every so often, as the machine's load changes);
  after every kill the target holds exactly the rows the committed checkpoint accounts for, and
  every run that completes equals an uninterrupted run.
- :func:`contend`: N trips of the same migration are released at once, round after round until
  the migration is done; in each round exactly one holds the lease and the others are refused
  (exit status 4) while it holds it, and only that one commits chunks.
- :func:`stall_past_lease`: a trip stalls until its lease has expired, another trip takes over
  and finishes, then the stalled trip goes on: it must not commit anything.

Trips run in forked children, not in ``python -m rowferry`` subprocesses: the parent has already
imported rowferry, SQLAlchemy and the drivers, so a fork costs a few milliseconds where starting
an interpreter costs half a second, and hundreds of kills fit in a test. A child opens its own
connections (``rowferry.run`` given a URL makes its own engine, without a pool) and never touches
the parent's; it writes its traceback to a file the parent reads, and ends with ``os._exit`` and
the exit status ``rowferry run`` would have (0 done, 3 stopped, 4 already running, 1 any other
error). A :class:`FaultFound` is raised at the first row lost, duplicated or changed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import mmap
import os
import random
import select
import signal
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any, NoReturn

import sqlalchemy as sa

import rowferry
from harness import reference
from rowferry import defaults
from rowferry.demo import order_history
from rowferry.engine.stops import Progress
from rowferry.migration.spec import Migration, Related, Row
from rowferry.state import store as state

MIGRATION = order_history.migration
KILLED = -signal.SIGKILL
#: The stalled trip's budget: its lease ends at least ``lease_grace`` - 1 s after its deadline
#: (the lease is stored to the second), so once the lease has expired the deadline has passed.
STALL_BUDGET = rowferry.Budget(seconds=1.5, lease_grace=1.0)
_RAISED = "\nfault harness: the trip raised "

Snapshots = dict[int, Any]
Trip = Callable[[], rowferry.RunResult]


class HarnessError(Exception):
    """A trip ended in a way the fault scenario does not allow (the message says how)."""


class FaultFound(AssertionError):
    """A row was lost, duplicated or changed, or a trip without the lease committed."""


# --- forked trips ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a forked trip ended: its exit status (``KILLED`` for SIGKILL), the class name of the
    exception it raised (``""`` if none) and everything it wrote to stderr."""

    code: int
    raised: str
    error: str


class Child:
    """One forked trip; the parent waits for it, may kill it, and reaps it exactly once."""

    def __init__(self, pid: int, stderr: IO[bytes]) -> None:
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.stderr = stderr
        self.outcome: Outcome | None = None

    def wait(self, timeout: float | None) -> bool:
        """Whether the trip has ended, waiting up to ``timeout`` seconds."""
        if self.outcome is not None:
            return True
        ready, _, _ = select.select([self.pidfd], [], [], timeout)
        return bool(ready)

    def kill(self) -> None:
        if self.outcome is None:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def reap(self, timeout: float = 60.0) -> Outcome:
        """Wait for the trip to end (killing it after ``timeout`` s) and return its outcome."""
        if self.outcome is None:
            ended = self.wait(timeout)
            if not ended:
                self.kill()
            _, status = os.waitpid(self.pid, 0)
            os.close(self.pidfd)
            self.stderr.seek(0)
            error = self.stderr.read().decode(errors="replace")
            self.stderr.close()
            raised = error.rpartition(_RAISED)[2].strip() if _RAISED in error else ""
            self.outcome = Outcome(os.waitstatus_to_exitcode(status), raised, error)
            if not ended:
                raise HarnessError(f"trip {self.pid} did not end within {timeout} s; killed")
        return self.outcome


def spawn(trip: Trip) -> Child:
    """Fork a child that runs ``trip`` and exits with the status ``rowferry run`` would."""
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the Child closes it when reaped
    pid = os.fork()
    if pid == 0:
        _child(trip, stderr.fileno())
    return Child(pid, stderr)


def _child(trip: Trip, stderr_fd: int) -> NoReturn:
    code = defaults.EXIT_FAILED
    try:
        os.dup2(stderr_fd, 2)
        result = trip()
        code = defaults.EXIT_DONE if result.done else defaults.EXIT_STOPPED
    except rowferry.AlreadyRunning as exc:
        code = defaults.EXIT_ALREADY_RUNNING
        _print_error(exc)
    except BaseException as exc:
        _print_error(exc)
    finally:
        os._exit(code)


def _print_error(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc)) + f"{_RAISED}{type(exc).__name__}\n"
    os.write(2, text.encode())


@contextmanager
def reaped(children: Sequence[Child]) -> Iterator[None]:
    """Kill and reap every child still running when the block ends, however it ends."""
    try:
        yield
    finally:
        for child in children:
            child.kill()
            with suppress(HarnessError):
                child.reap()


def make_trip(
    url: str, *, chunk_size: int, migration: Migration = MIGRATION, **options: Any
) -> Trip:
    """A trip of ``migration`` on ``url`` (source and target), to run in a child."""
    return partial(rowferry.run, migration, url, chunk_size=chunk_size, **options)


# --- what is committed -------------------------------------------------------------------------


@dataclass(frozen=True)
class Committed:
    """What is committed: target rows, distinct keys among them, and the state row's figures."""

    rows: int
    keys: int
    accounted: int = 0  # rows_written of the state row
    rows_read: int = 0
    chunks: int = 0
    token: int = 0
    trips: int = 0
    lease_until: dt.datetime | None = None

    @property
    def lost(self) -> int:
        """Rows the checkpoint accounts for that are not in the target."""
        return max(self.accounted - self.rows, 0)

    @property
    def duplicated(self) -> int:
        """Rows in the target twice, plus rows the checkpoint does not account for (the next
        trip would write them again)."""
        return (self.rows - self.keys) + max(self.rows - self.accounted, 0)


class Inspector:
    """The parent's own view of one database: what is committed, and starting over."""

    def __init__(self, url: str, migration: Migration = MIGRATION) -> None:
        self.url = url
        self.name = migration.name
        self.table = migration.target.table
        self.key = migration.target.unique_key[0]
        # One snapshot for the count and the state row: a trip killed just after sending its
        # COMMIT is committed by the server a moment later, and two READ COMMITTED statements
        # (PostgreSQL's default) could see the chunk's checkpoint but not its rows.
        self.engine = sa.create_engine(url, isolation_level="REPEATABLE READ")
        self.has_state = False

    def committed(self) -> Committed:
        count = f"SELECT COUNT(*), COUNT(DISTINCT {self.key}) FROM {self.table}"
        with self.engine.connect() as conn:
            rows, keys = conn.execute(sa.text(count)).one()
            saved = self._state(conn)
        if saved is None:
            return Committed(int(rows), int(keys))
        return Committed(
            int(rows),
            int(keys),
            saved.rows_written,
            saved.rows_read,
            saved.chunks,
            saved.token,
            saved.trips,
            saved.lease_until,
        )

    def _state(self, conn: sa.Connection) -> state.MigrationState | None:
        self.has_state = self.has_state or sa.inspect(conn).has_table(state.STATE_TABLE)
        return state.read(conn, self.name) if self.has_state else None

    def start_over(self) -> None:
        """Empty the target and forget the migration's progress."""
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {self.table}"))
        with self.engine.connect() as conn:
            if sa.inspect(conn).has_table(state.STATE_TABLE):
                state.reset(conn, self.name)

    def close(self) -> None:
        self.engine.dispose()


def compare(found: Snapshots, expected: Snapshots) -> tuple[int, int]:
    """(rows lost, rows different or unexpected) between a target's snapshots and the expected."""
    lost = len(expected.keys() - found.keys())
    extra = len(found.keys() - expected.keys())
    changed = sum(found[k] != v for k, v in expected.items() if k in found)
    return lost, extra + changed


# --- kills at random instants ------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """An uninterrupted run: its snapshots and how long the forked trip took, fork to exit."""

    snapshots: Snapshots
    seconds: float


@dataclass
class KillTally:
    """What :func:`kill_and_resume` did and found."""

    kills: int = 0
    kills_in_setup: int = 0  # before the chunk loop: connecting, reflecting, taking the lease
    kills_after_progress: int = 0  # the killed trip had committed one chunk or more
    completions: int = 0  # trips that ran to "done", each compared with the baseline
    rows_lost: int = 0
    rows_duplicated: int = 0
    rows_different: int = 0
    seconds: float = 0.0
    run_seconds: list[float] = field(default_factory=list)  # D, as measured every so often

    @property
    def kills_in_chunks(self) -> int:
        """Kills inside the chunk loop: the chunk open at that instant is rolled back."""
        return self.kills - self.kills_in_setup

    @property
    def kills_without_progress(self) -> int:
        """Kills of trips that had committed nothing: the kill changed nothing."""
        return self.kills - self.kills_after_progress


def uninterrupted(url: str, *, chunk_size: int, runs: int = 3) -> Baseline:
    """Run the migration ``runs`` times, unharmed, each in a forked trip from the start: their
    snapshots must be equal; the duration is the median (the first run of a fresh database is
    slower). The target is left empty, the migration not started."""
    inspector = Inspector(url)
    found: list[Snapshots] = []
    seconds: list[float] = []
    try:
        for _ in range(runs):
            started = time.monotonic()
            outcome = spawn(make_trip(url, chunk_size=chunk_size)).reap()
            seconds.append(time.monotonic() - started)
            if outcome.code != defaults.EXIT_DONE:
                raise HarnessError(
                    f"an uninterrupted run ended with {outcome.code}:\n{outcome.error}"
                )
            found.append(reference.snapshots(url))
            inspector.start_over()
    finally:
        inspector.close()
    if any(f != found[0] for f in found):
        raise FaultFound("uninterrupted runs of the same migration wrote different snapshots")
    return Baseline(found[0], statistics.median(seconds))


def kill_and_resume(
    url: str,
    baseline: Baseline,
    *,
    kills: int,
    seed: int,
    chunk_size: int,
    remeasure_every: int = 50,
    report: Callable[[KillTally], None] | None = None,
) -> KillTally:
    """SIGKILL trips at instants drawn uniformly from ``[0, D]`` until ``kills`` kills, where D
    is the duration of one whole run (``baseline.seconds`` at first); each trip resumes where
    the killed one committed. A trip that completes before its instant is compared with the
    baseline, then the migration starts over. Every ``remeasure_every`` kills, D is measured
    again (so that the instants follow the machine's load): the migration is finished, then one
    trip runs it from the start, unharmed; both are compared too. So is the trip that finishes
    the migration after the last kill."""
    killer = _Killer(url, baseline, chunk_size)
    rng = random.Random(seed)
    try:
        while killer.tally.kills < kills:
            if killer.tally.kills >= len(killer.tally.run_seconds) * remeasure_every:
                killer.remeasure()
            killer.run_once(rng.uniform(0.0, killer.tally.run_seconds[-1]))
            if report is not None:
                report(killer.tally)
        killer.run_once(None)
    finally:
        killer.close()
    return killer.tally


@dataclass
class _LoopReached:
    """A stop condition that never stops: it marks, in memory shared with the parent, that the
    trip has taken its lease and entered the chunk loop."""

    flag: mmap.mmap

    def __call__(self, progress: Progress) -> str | None:
        self.flag[0] = 1
        return None


class _Killer:
    """Runs trips one at a time, kills each at its instant, and checks what is left."""

    def __init__(self, url: str, baseline: Baseline, chunk_size: int) -> None:
        self.url, self.baseline = url, baseline
        self.inspector = Inspector(url)
        self.flag = mmap.mmap(-1, 1)
        self.trip = make_trip(url, chunk_size=chunk_size, stop_when=[_LoopReached(self.flag)])
        self.tally = KillTally(run_seconds=[baseline.seconds])
        self.measured = [baseline.seconds]
        self.started = time.monotonic()
        self.before = self.inspector.committed()

    def run_once(self, delay: float | None) -> float:
        """One trip, killed after ``delay`` seconds unless it ends first (``None``: never);
        return how long it lived."""
        self.flag[0] = 0
        started = time.monotonic()
        child = spawn(self.trip)
        with reaped([child]):
            if delay is not None and not child.wait(delay):
                child.kill()
            outcome = child.reap()
        lived = time.monotonic() - started
        if outcome.code == KILLED:
            self._killed(delay or 0.0)
        elif outcome.code == defaults.EXIT_DONE:
            self._completed()
        else:
            raise HarnessError(f"a trip ended with status {outcome.code}:\n{outcome.error}")
        self.tally.seconds = time.monotonic() - self.started
        return lived

    def remeasure(self) -> None:
        """Finish the migration, then time one whole run from the start (median of the last
        three such runs, the baseline's included)."""
        if self.before.trips:
            self.run_once(None)
        self.measured.append(self.run_once(None))
        self.tally.run_seconds.append(statistics.median(self.measured[-3:]))

    def _killed(self, delay: float) -> None:
        after = self.inspector.committed()
        tally = self.tally
        tally.kills += 1
        tally.kills_in_setup += self.flag[0] == 0
        tally.kills_after_progress += after.chunks > self.before.chunks
        tally.rows_lost += after.lost
        tally.rows_duplicated += after.duplicated
        if after.lost or after.duplicated:
            time.sleep(1.0)
            later = self.inspector.committed()
            raise FaultFound(
                f"kill {tally.kills}, {delay:.3f} s after the start, left {after}; "
                f"1 s later: {later}"
            )
        self.before = after

    def _completed(self) -> None:
        after = self.inspector.committed()
        lost, different = compare(reference.snapshots(self.url), self.baseline.snapshots)
        tally = self.tally
        tally.completions += 1
        tally.rows_lost += lost
        tally.rows_duplicated += after.duplicated
        tally.rows_different += different
        if lost or different or after.duplicated:
            raise FaultFound(
                f"completion {tally.completions} (after {tally.kills} kills): {lost} rows lost, "
                f"{after.duplicated} duplicated, {different} different from the baseline"
            )
        self.inspector.start_over()
        self.before = self.inspector.committed()

    def close(self) -> None:
        self.inspector.close()
        self.flag.close()


# --- concurrent trips --------------------------------------------------------------------------


@dataclass
class ContentionTally:
    """What :func:`contend` did: rounds of trips released at once."""

    rounds: int = 0
    runs: int = 0
    refused: int = 0  # trips refused with exit status 4 while another held the lease
    chunks: int = 0  # chunks committed, all by the round's lease holder
    slowest_refusal: float = 0.0  # seconds from the release to a refused trip's exit
    done: bool = False  # a lease holder finished the migration


class _Pipe:
    """A pipe from the parent to its children (token bytes) or back (lines)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.buffer = b""

    def send(self, data: bytes) -> None:
        os.write(self.write_fd, data)

    def take(self) -> None:
        """Block until one token byte arrives (in a child)."""
        os.read(self.read_fd, 1)

    def lines(self, timeout: float) -> list[str]:
        """The complete lines that arrive within ``timeout`` seconds (none: ``[]``)."""
        ready, _, _ = select.select([self.read_fd], [], [], max(timeout, 0.0))
        if ready:
            self.buffer += os.read(self.read_fd, 65536)
        *done, self.buffer = self.buffer.split(b"\n")
        return [line.decode() for line in done]

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


@dataclass
class _Contender:
    """A trip's hooks in a child: hold the lease at the first stop check until the parent says
    go (so that every other trip meets a live lease), and report each committed chunk."""

    reports: _Pipe
    go: _Pipe
    holding: bool = False

    def __call__(self, progress: Progress) -> str | None:
        if not self.holding:
            self.holding = True
            self.reports.send(f"hold {os.getpid()}\n".encode())
            self.go.take()
        return None

    def on_chunk(self, event: rowferry.ChunkDone) -> None:
        self.reports.send(f"chunk {os.getpid()} {event.rows_done}\n".encode())


def contend(
    url: str,
    runs: int,
    *,
    chunk_size: int,
    chunks_per_trip: int,
    rounds: int | None = None,
    refusal_timeout: float = 10.0,
) -> ContentionTally:
    """Release ``runs`` trips at once, round after round, until one of them finishes the
    migration (or after ``rounds`` rounds). In every round one trip takes the lease and waits at
    its first stop check until every other trip has exited with status 4, which must happen
    within ``refusal_timeout`` seconds of the release; then it runs ``chunks_per_trip`` chunks.
    Raises :class:`FaultFound` if any other trip took the lease or committed a chunk."""
    tally = ContentionTally()
    inspector = Inspector(url)
    try:
        while not tally.done and tally.rounds != rounds:
            trips = _Round(url, runs, chunk_size, chunks_per_trip, inspector)
            tally.done = trips.play(tally, refusal_timeout)
    finally:
        inspector.close()
    return tally


class _Round:
    """``runs`` trips released at once (forked, each waiting for a token of the start pipe)."""

    def __init__(
        self, url: str, runs: int, chunk_size: int, max_chunks: int, inspector: Inspector
    ) -> None:
        self.inspector = inspector
        self.before = inspector.committed()
        self.start, self.reports, self.go = _Pipe(), _Pipe(), _Pipe()
        hooks = _Contender(self.reports, self.go)
        trip = make_trip(
            url,
            chunk_size=chunk_size,
            budget=rowferry.Budget(max_chunks=max_chunks),
            stop_when=[hooks],
            on_chunk=hooks.on_chunk,
        )
        self.children = [spawn(self._after_start(trip)) for _ in range(runs)]
        self.messages: list[str] = []

    def _after_start(self, trip: Trip) -> Trip:
        def started() -> rowferry.RunResult:
            self.start.take()
            return trip()

        return started

    def play(self, tally: ContentionTally, timeout: float) -> bool:
        """Release the trips, check the round, and return whether the migration is done."""
        try:
            with reaped(self.children):
                released = time.monotonic()
                self.start.send(b"x" * len(self.children))
                holder = self._holder(released + timeout)
                others = [c for c in self.children if c is not holder]
                slowest = self._refusals(others, released, timeout)
                self.go.send(b"x")
                outcome = holder.reap()
                self.messages += self.reports.lines(0.0)
        finally:
            for pipe in (self.start, self.reports, self.go):
                pipe.close()
        if outcome.code not in (defaults.EXIT_DONE, defaults.EXIT_STOPPED):
            raise HarnessError(f"the lease holder ended with {outcome.code}:\n{outcome.error}")
        self._check(holder.pid, tally)
        tally.slowest_refusal = max(tally.slowest_refusal, slowest)
        return outcome.code == defaults.EXIT_DONE

    def _holder(self, deadline: float) -> Child:
        """The child that took the lease and waits at its first stop check."""
        while time.monotonic() < deadline:
            self.messages += self.reports.lines(deadline - time.monotonic())
            holds = [int(m.split()[1]) for m in self.messages if m.startswith("hold ")]
            if holds:
                return next(c for c in self.children if c.pid == holds[0])
        ended = [c.reap(0.0) for c in self.children if c.wait(0.0)]
        raise HarnessError(
            "no trip took the lease within the timeout; ended:\n"
            + "\n".join(f"status {o.code}:\n{o.error}" for o in ended)
        )

    def _refusals(self, others: list[Child], released: float, timeout: float) -> float:
        """Reap every other trip, each refused (status 4) within ``timeout`` s of the release;
        return the slowest one's time."""
        waiting = {c.pidfd: c for c in others}
        slowest = 0.0
        while waiting:
            left = released + timeout - time.monotonic()
            ready, _, _ = select.select(list(waiting), [], [], max(left, 0.0))
            if not ready:
                raise HarnessError(f"{len(waiting)} trips were not refused within {timeout} s")
            slowest = time.monotonic() - released
            for fd in ready:
                outcome = waiting.pop(fd).reap()
                if outcome.code != defaults.EXIT_ALREADY_RUNNING:
                    raise HarnessError(
                        f"a trip that met a live lease ended with status {outcome.code}, "
                        f"not 4:\n{outcome.error}"
                    )
        return slowest

    def _check(self, holder: int, tally: ContentionTally) -> None:
        """Only the holder took the lease (token and trips up by one) and committed chunks."""
        after = self.inspector.committed()
        problems = self._problems(holder, after)
        if problems:
            raise FaultFound(f"round {tally.rounds + 1}: " + "; ".join(problems))
        tally.rounds += 1
        tally.runs += len(self.children)
        tally.refused += len(self.children) - 1
        tally.chunks += after.chunks - self.before.chunks

    def _problems(self, holder: int, after: Committed) -> list[str]:
        before, problems = self.before, []
        holds = [m for m in self.messages if m.startswith("hold ")]
        chunks = [m.split()[1:] for m in self.messages if m.startswith("chunk ")]
        done = [before.rows_read] + [int(rows) for pid, rows in chunks if int(pid) == holder]
        if len(holds) != 1:
            problems.append(f"{len(holds)} trips held the lease")
        if len(done) != len(chunks) + 1:
            problems.append(f"{len(chunks) + 1 - len(done)} chunks reported by other trips")
        if done != sorted(set(done)) or done[-1] != after.rows_read:
            problems.append(f"rows done went {done}; {after.rows_read} committed")
        if after.chunks - before.chunks != len(chunks):
            problems.append(f"{after.chunks - before.chunks} chunks committed, {len(chunks)} told")
        if (after.token, after.trips) != (before.token + 1, before.trips + 1):
            went = f"{before.token, before.trips} -> {after.token, after.trips}"
            problems.append(f"(token, trips) went {went}: not one lease taken")
        if after.lost or after.duplicated:
            problems.append(f"{after.lost} rows lost, {after.duplicated} duplicated")
        return problems


# --- a trip stalled past its lease -------------------------------------------------------------


@dataclass(frozen=True)
class StallResult:
    """A stalled trip, the trip that took over its expired lease, and what was committed."""

    stalled: Outcome  # how the stalled trip ended once it went on
    takeover: rowferry.RunResult
    before_resume: Committed  # committed when the stalled trip went on
    after: Committed  # committed when it had ended


@dataclass
class _Stall:
    """Blocks a trip (in a child) at the ``skip + 1``-th call until the parent says go, after
    telling the parent so."""

    reports: _Pipe
    go: _Pipe
    skip: int = 0

    def block(self) -> None:
        if self.skip == 0:
            self.reports.send(b"stalled\n")
            self.go.take()
        self.skip -= 1

    def on_chunk(self, event: rowferry.ChunkDone) -> None:
        self.block()

    def transform(self, inner: Callable[[Row, Related], Any]) -> Callable[[Row, Related], Any]:
        def stalling(row: Row, related: Related) -> Any:
            self.block()
            return inner(row, related)

        return stalling

    def trip(self, url: str, chunk_size: int, migration: Migration, inside_chunk: bool) -> Trip:
        """A trip of ``migration`` that stalls in its transform or in ``on_chunk``."""
        if not inside_chunk:
            return make_trip(
                url, chunk_size=chunk_size, budget=STALL_BUDGET, on_chunk=self.on_chunk
            )
        assert migration.transform is not None
        stalling = dataclasses.replace(migration, transform=self.transform(migration.transform))
        return make_trip(url, chunk_size=chunk_size, migration=stalling, budget=STALL_BUDGET)


def stall_past_lease(
    url: str,
    *,
    chunk_size: int,
    inside_chunk: bool,
    migration: Migration = MIGRATION,
    timeout: float = 30.0,
) -> StallResult:
    """Stall a trip (budget :data:`STALL_BUDGET`) once its first chunk has committed: between
    chunks (in ``on_chunk``), or ``inside_chunk`` (in the transform of the second chunk's first
    row, before that chunk's writes). Wait until its lease has expired, let another trip take
    over and finish, then let the stalled trip go on and see how it ends."""
    stall = _Stall(_Pipe(), _Pipe(), skip=chunk_size if inside_chunk else 0)
    inspector = Inspector(url, migration)
    child = spawn(stall.trip(url, chunk_size, migration, inside_chunk))
    try:
        with reaped([child]):
            if stall.reports.lines(timeout) != ["stalled"]:
                raise HarnessError(f"the trip did not stall within {timeout} s")
            _wait_for_expiry(inspector, timeout)
            takeover = rowferry.run(migration, url, chunk_size=chunk_size)
            before_resume = inspector.committed()
            stall.go.send(b"x")
            outcome = child.reap(timeout)
        return StallResult(outcome, takeover, before_resume, inspector.committed())
    finally:
        inspector.close()
        stall.reports.close()
        stall.go.close()


def _wait_for_expiry(inspector: Inspector, timeout: float) -> None:
    """Poll until the migration's lease has expired (its holder is alive, so only expiry lets
    another trip take over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        until = inspector.committed().lease_until
        if until is not None and until < state.utcnow():
            return
        time.sleep(0.05)
    raise HarnessError(f"the lease did not expire within {timeout} s")
