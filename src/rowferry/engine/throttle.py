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
share of the time a trip works: after a chunk of ``t`` seconds at 50 %, a pause of ``t``;
a throttle may also hold a fixed pause after each chunk (:attr:`Throttle.pause_seconds`), and
:meth:`Throttle.rest` pauses. A running migration's settings (``rowferry set``) replace the
limits of the gates of each kind (:attr:`ReplicaLag.setting` ...) through ``limits``.

:class:`ThrottleOptions` is a throttle as the command line and the Lambda handler describe it:
replica URLs, limits, checks written ``SQL<=LIMIT`` (:func:`parse_check`), a share of the time
in percent (:func:`parse_percent`) and a pause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

import sqlalchemy as sa

from rowferry import defaults
from rowferry.dialects.connect import describe, mask_secrets, server_address
from rowferry.dialects.lookup import dialect_for
from rowferry.errors import ConfigError, ConnectError
from rowferry.state import control

#: the longest single pause between two readings of the gates
MAX_PAUSE_SECONDS = 2.0
FIRST_PAUSE_SECONDS = 0.1


@dataclass(frozen=True)
class Reading:
    """One gate's measure (``None``: unknown, so over) and its limit."""

    gate: str
    value: float | None
    limit: float
    #: the setting that replaces the limits of the gate's kind (``max_replica_lag`` ...; ""
    #: for a kind that has none)
    setting: str = ""

    @property
    def over(self) -> bool:
        return self.value is None or self.value > self.limit

    def __str__(self) -> str:
        shown = "unknown" if self.value is None else f"{self.value:g}"
        return f"{self.gate} {shown} (limit {self.limit:g})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "value": self.value,
            "limit": self.limit,
            "over": self.over,
            "setting": self.setting,
        }


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
    setting: ClassVar[str] = "max_replica_lag"

    def read(self) -> float | None:
        """The lag; None (over any limit) while the replica cannot be reached: a replica that
        is down or restarting is as far behind as can be, and the trip waits for it."""
        try:
            return self.measure()
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            return None

    def measure(self) -> float | None:
        """The lag, raising when the replica cannot be read (what :meth:`Throttle.probe`
        reports before a trip)."""
        with self.engine.connect() as conn:
            return dialect_for(self.engine).replica_lag(conn)


@dataclass
class ThreadsRunning:
    """Statements running on the server now (MySQL/MariaDB ``Threads_running``, PostgreSQL's
    active backends), this connection's own not counted on PostgreSQL."""

    engine: sa.Engine
    limit: float
    name: str = "threads running"
    setting: ClassVar[str] = "max_threads_running"

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
    setting: ClassVar[str] = "max_history_length"

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
    #: the caller's ``interrupt`` asked to stop waiting
    interrupted: bool = False

    @property
    def over(self) -> list[Reading]:
        return [r for r in self.readings if r.over]


@dataclass
class Throttle:
    """The gates a trip reads before each chunk, and the pauses it makes after each:
    ``duty_cycle`` (a share of the time) and ``pause_seconds`` (a fixed pause)."""

    gates: Sequence[Gate]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    #: seconds spent waiting in all, over every call
    waited: float = field(default=0.0)
    duty_cycle: DutyCycle | None = None
    pause_seconds: float = 0.0
    #: seconds spent pausing (:meth:`rest`) in all, over every call
    paused: float = field(default=0.0)

    def read(self, limits: Mapping[str, float] | None = None) -> tuple[Reading, ...]:
        """Read every gate, against its own limit or the one ``limits`` gives its kind."""
        return tuple(_reading(g, g.read(), limits or {}) for g in self.gates)

    def probe(self) -> tuple[Reading, ...]:
        """Read every gate once, before a trip takes its lease or writes anything: a gate its
        server does not measure (no replica, no InnoDB) or a check that fails raises
        :class:`ConfigError`, a server that cannot be reached :class:`ConnectError`."""
        return tuple(_reading(g, _probed(g), {}) for g in self.gates)

    def wait(
        self,
        deadline: float | None = None,
        *,
        limits: Mapping[str, float] | None = None,
        interrupt: Callable[[], bool] | None = None,
        before_pause: Callable[[], None] | None = None,
    ) -> Waited:
        """Wait until every gate is under its limit, or until waiting longer would pass
        ``deadline`` (a :func:`time.monotonic` time; ``None``: wait as long as it takes).

        ``limits`` replace the gates' own, by kind, and are looked up at each reading (a
        caller may change them meanwhile); ``interrupt`` is asked after each pause and ends
        the wait when it answers True; ``before_pause`` is called once, before the first."""
        started = self.clock()
        pause = FIRST_PAUSE_SECONDS
        while True:
            readings = self.read(limits)
            if not any(r.over for r in readings):
                return self._waited(started, readings, throttled=False)
            if deadline is not None and self.clock() + pause > deadline:
                return self._waited(started, readings, throttled=True)
            if before_pause is not None and pause == FIRST_PAUSE_SECONDS:
                before_pause()
            self.sleep(pause)
            if interrupt is not None and interrupt():
                return self._waited(started, readings, throttled=False, interrupted=True)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)

    def rest(
        self,
        seconds: float,
        interrupt: Callable[[], bool] | None = None,
        before_pause: Callable[[], None] | None = None,
    ) -> bool:
        """Pause for ``seconds``, in slices of at most :data:`MAX_PAUSE_SECONDS` with
        ``interrupt`` asked after each (``before_pause`` called first); whether it ended the
        pause early."""
        if before_pause is not None and seconds > 0:
            before_pause()
        started = self.clock()
        try:
            while (left := started + seconds - self.clock()) > 0:
                self.sleep(min(left, MAX_PAUSE_SECONDS))
                if interrupt is not None and interrupt():
                    return True
            return False
        finally:
            self.paused += self.clock() - started

    def _waited(
        self,
        started: float,
        readings: tuple[Reading, ...],
        throttled: bool,
        interrupted: bool = False,
    ) -> Waited:
        seconds = self.clock() - started
        self.waited += seconds
        return Waited(seconds, readings, throttled, interrupted)


def _reading(gate: Gate, value: float | None, limits: Mapping[str, float]) -> Reading:
    setting = getattr(gate, "setting", "")
    return Reading(gate.name, value, limits.get(setting, gate.limit), setting)


def _probed(gate: Gate) -> float | None:
    engine = getattr(gate, "engine", None)
    where = f"the gate {gate.name!r}" + (f" on {describe(engine.url)}" if engine else "")
    measure: Callable[[], float | None] = getattr(gate, "measure", gate.read)
    try:
        return measure()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise ConnectError(f"cannot read {where}: {mask_secrets(str(exc.orig))}") from exc
    except sa.exc.DBAPIError as exc:
        raise ConfigError(f"{where} failed: {mask_secrets(str(exc.orig))}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} did not return a number: {exc}") from exc


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


@dataclass(frozen=True)
class ThrottleOptions:
    """A throttle as the command line and the Lambda handler take it, its values checked where
    they are read: ``replicas`` (URLs; a ``ReplicaLag`` gate on each, limit
    ``max_replica_lag``), ``max_threads_running`` and ``max_history_length`` (gates on the
    source), ``checks`` (``(sql, limit)``: a ``Check`` on the source each), ``max_load`` (the
    percentage of the wall time the trip works) and ``sleep`` (seconds after each chunk)."""

    replicas: tuple[str, ...] = ()
    max_replica_lag: float = defaults.MAX_REPLICA_LAG_SECONDS
    max_threads_running: float | None = None
    max_history_length: float | None = None
    checks: tuple[tuple[str, float], ...] = ()
    max_load: float | None = None
    sleep: float = 0.0

    def build(self, source: str, engine_for: Callable[[str], sa.Engine]) -> Throttle | None:
        """The throttle, its databases (the ``source`` URL, the replicas) opened with
        ``engine_for``; None when it has nothing to do."""
        if self == ThrottleOptions(max_replica_lag=self.max_replica_lag):
            return None
        replicas = [ReplicaLag(engine_for(url), self.max_replica_lag) for url in self.replicas]
        if len(replicas) > 1:  # name each, so that a reading says which replica it is
            replicas = [replace(g, name=f"replica lag of {_host(g.engine)}") for g in replicas]
        gates: list[Gate] = [*replicas]
        if self.max_threads_running is not None:
            gates.append(ThreadsRunning(engine_for(source), self.max_threads_running))
        if self.max_history_length is not None:
            gates.append(HistoryLength(engine_for(source), self.max_history_length))
        for number, (sql, limit) in enumerate(self.checks, 1):
            name = "check" if len(self.checks) == 1 else f"check {number}"
            gates.append(Check(engine_for(source), sql, limit, name=name))
        duty = None if self.max_load is None else DutyCycle(self.max_load / 100)
        if not gates and duty is None and not self.sleep:
            return None
        return Throttle(gates, duty_cycle=duty, pause_seconds=self.sleep)


def _host(engine: sa.Engine) -> str:
    address = server_address(engine.url)
    return describe(engine.url) if address is None else f"{address[0]}:{address[1]}"


def parse_check(text: str) -> tuple[str, float]:
    """``SQL<=LIMIT`` (``SELECT COUNT(*) FROM jobs<=100``) as the query and its limit."""
    sql, sep, limit = text.rpartition("<=")
    if not sep or not sql.strip():
        raise ConfigError(
            f"{text!r} is not SQL<=LIMIT: a query that returns one number, '<=', then the "
            "number it may reach, e.g. 'SELECT COUNT(*) FROM jobs<=100'"
        )
    try:
        value = float(limit)
    except ValueError:
        raise ConfigError(f"the limit of {text!r} is not a number: {limit.strip()!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"the limit of {text!r} must be a finite number")
    return sql.strip(), value


def parse_percent(text: str) -> float:
    """``50%`` or ``50``: the percentage of the wall time a trip may work (above 0, at most
    100)."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ConfigError(f"{text!r} is not a percentage like 50%") from None
    problem = control.check("max_load", value)
    if problem:
        raise ConfigError(f"{text!r}: the share of the time {problem} (percent)")
    return value


__all__ = [
    "Check",
    "DutyCycle",
    "Gate",
    "HistoryLength",
    "Reading",
    "ReplicaLag",
    "ThreadsRunning",
    "Throttle",
    "ThrottleOptions",
    "Waited",
    "parse_check",
    "parse_percent",
]
