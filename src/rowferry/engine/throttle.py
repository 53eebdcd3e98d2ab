"""Yielding to the database's health: gates read before a chunk, and a share of the time.

A gate reads one measure of a server's health and compares it with its limit: a replica's lag
(:class:`ReplicaLag`: MySQL/MariaDB ``Seconds_Behind_Master``, a PostgreSQL standby's replay
delay), the primary's running threads (:class:`ThreadsRunning`), InnoDB's history list length
(:class:`HistoryLength`), or a query of the user's (:class:`Check`). A measure that cannot be
known counts as over its limit: a replica whose SQL thread is stopped is as far behind as can
be.

:meth:`Throttle.wait` reads the gates; while one is over, it sleeps (0.1 s, doubling up to
:data:`MAX_PAUSE_SECONDS`) and reads them again, until all are under or until waiting longer
would pass the caller's deadline, when it answers ``throttled``. :class:`DutyCycle` caps the
share of the time a trip works: after a chunk of ``t`` seconds at 50 %, a pause of ``t``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from rowferry.dialects.lookup import dialect_for
from rowferry.errors import ConfigError

#: the longest single pause between two readings of the gates
MAX_PAUSE_SECONDS = 2.0
FIRST_PAUSE_SECONDS = 0.1


@dataclass(frozen=True)
class Reading:
    """One gate's measure (``None``: unknown, so over) and its limit."""

    gate: str
    value: float | None
    limit: float

    @property
    def over(self) -> bool:
        return self.value is None or self.value > self.limit

    def __str__(self) -> str:
        shown = "unknown" if self.value is None else f"{self.value:g}"
        return f"{self.gate} {shown} (limit {self.limit:g})"


class Gate(Protocol):
    name: str
    limit: float

    def read(self) -> float | None: ...


def _scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar()


@dataclass
class ReplicaLag:
    """Seconds a replica is behind its primary, read on the replica
    (:meth:`rowferry.dialects.base.Dialect.replica_lag`)."""

    engine: sa.Engine
    limit: float
    name: str = "replica lag"

    def read(self) -> float | None:
        with self.engine.connect() as conn:
            return dialect_for(self.engine).replica_lag(conn)


@dataclass
class ThreadsRunning:
    """Statements running on the server now (MySQL/MariaDB ``Threads_running``, PostgreSQL's
    active backends), this connection's own not counted on PostgreSQL."""

    engine: sa.Engine
    limit: float
    name: str = "threads running"

    def read(self) -> float | None:
        value = _scalar(self.engine, dialect_for(self.engine).threads_running_sql())
        return None if value is None else float(value)


@dataclass
class HistoryLength:
    """InnoDB's history list length: undo records not yet purged, which a long-lived read or a
    flood of writes makes grow (MySQL/MariaDB only)."""

    engine: sa.Engine
    limit: float
    name: str = "history list length"

    def read(self) -> float | None:
        value = _scalar(self.engine, dialect_for(self.engine).history_length_sql())
        return None if value is None else float(value)


@dataclass
class Check:
    """A query of the user's that returns one number, over its limit when the database should
    be left alone (say, the depth of a job queue)."""

    engine: sa.Engine
    sql: str
    limit: float
    name: str = "check"

    def read(self) -> float | None:
        value = _scalar(self.engine, self.sql)
        return None if value is None else float(value)


@dataclass(frozen=True)
class Waited:
    """What :meth:`Throttle.wait` did: seconds slept, the last readings, and whether it gave up
    (a gate still over when waiting longer would pass the deadline)."""

    seconds: float
    readings: tuple[Reading, ...]
    throttled: bool

    @property
    def over(self) -> list[Reading]:
        return [r for r in self.readings if r.over]


@dataclass
class Throttle:
    """The gates a trip reads before each chunk."""

    gates: Sequence[Gate]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    #: seconds spent waiting in all, over every call
    waited: float = field(default=0.0)

    def read(self) -> tuple[Reading, ...]:
        return tuple(Reading(g.name, g.read(), g.limit) for g in self.gates)

    def wait(self, deadline: float | None = None) -> Waited:
        """Wait until every gate is under its limit, or until waiting longer would pass
        ``deadline`` (a :func:`time.monotonic` time; ``None``: wait as long as it takes)."""
        started = self.clock()
        pause = FIRST_PAUSE_SECONDS
        while True:
            readings = self.read()
            if not any(r.over for r in readings):
                return self._waited(started, readings, throttled=False)
            if deadline is not None and self.clock() + pause > deadline:
                return self._waited(started, readings, throttled=True)
            self.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)

    def _waited(self, started: float, readings: tuple[Reading, ...], throttled: bool) -> Waited:
        seconds = self.clock() - started
        self.waited += seconds
        return Waited(seconds, readings, throttled)


@dataclass(frozen=True)
class DutyCycle:
    """At most ``share`` of the time working: after a chunk of ``t`` seconds, a pause of
    ``t * (1 - share) / share`` (50 %: as long as the chunk took)."""

    share: float

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ConfigError(
                f"the share of time to work must be above 0 and at most 1, not {self.share}"
            )

    def pause_after(self, chunk_seconds: float) -> float:
        return chunk_seconds * (1 - self.share) / self.share


__all__ = [
    "Check",
    "DutyCycle",
    "Gate",
    "HistoryLength",
    "Reading",
    "ReplicaLag",
    "ThreadsRunning",
    "Throttle",
    "Waited",
]
