"""What a migration is told from outside, kept in its row of ``rowferry_state``.

``rowferry pause``, ``resume`` and ``cancel`` set the row's ``control`` column (``paused``,
``cancelled`` or NULL); ``rowferry set`` its ``settings_json``: the chunk duration to aim at and
the throttle's limits, each replacing a runner's own. Every trip reads both before each chunk
(:mod:`rowferry.engine.pacing`), so they reach every runner, the command line's and the Lambda
handler's alike: a paused trip stops there with status ``paused`` and later trips do nothing
until the migration is resumed; a cancelled one stops the same way and stays so until
``rowferry reset``. What was written stays written either way.

Each change is one UPDATE of those columns in a transaction of its own. It takes no lease and
leaves alone the fencing token, the chunk count and every column a checkpoint writes, so a
running trip's compare-and-set still matches and no checkpoint writes over the change. On
MySQL/MariaDB and PostgreSQL the change waits for a chunk that holds the row to commit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import sqlalchemy as sa

from rowferry.errors import ConfigError
from rowferry.state.store import MigrationState, ensure_table, utcnow
from rowferry.state.tables import state_table as _t

Hold = Literal["paused", "cancelled"]
Action = Literal["pause", "resume", "cancel"]

#: each setting: the least value it may take, whether that value itself is allowed, and the
#: most (None: no bound)
_RANGES: dict[str, tuple[float, bool, float | None]] = {
    "chunk_seconds": (0.0, False, None),
    "max_replica_lag": (0.0, True, None),
    "max_threads_running": (1.0, True, None),
    "max_history_length": (1.0, True, None),
    "max_load": (0.0, False, 100.0),
    "sleep": (0.0, True, None),
}


def check(name: str, value: float) -> str | None:
    """What is wrong with ``value`` for the setting ``name`` (a phrase), or None."""
    least, allowed, most = _RANGES[name]
    if value != value or value in (float("inf"), float("-inf")):  # NaN or infinite
        return "must be a finite number"
    too_small = value < least or (value == least and not allowed)
    if too_small or (most is not None and value > most):
        above = "at least" if allowed else "above"
        upto = f" and at most {most:g}" if most is not None else ""
        return f"must be {above} {least:g}{upto}"
    return None


@dataclass(frozen=True)
class Settings:
    """Values a running migration takes from its state row, each in place of its runner's own
    (None: the runner's). ``chunk_seconds``: the duration ``chunk_size="auto"`` aims each chunk
    at; ``max_replica_lag``, ``max_threads_running``, ``max_history_length``: the limits of the
    runner's gates of those kinds; ``max_load``: the percentage of the wall time the trip works
    (a duty cycle); ``sleep``: seconds of pause after each chunk."""

    chunk_seconds: float | None = None
    max_replica_lag: float | None = None
    max_threads_running: float | None = None
    max_history_length: float | None = None
    max_load: float | None = None
    sleep: float | None = None

    def items(self) -> dict[str, float]:
        """The settings that are set."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def problems(self) -> list[str]:
        found = ((name, value, check(name, value)) for name, value in self.items().items())
        return [f"{name} {why}, not {value:g}" for name, value, why in found if why]

    def merged(self, newer: Settings) -> Settings:
        """These settings with those set in ``newer`` in their place."""
        return replace(self, **newer.items())

    def to_json(self) -> str | None:
        return json.dumps(self.items(), sort_keys=True) if self.items() else None

    @classmethod
    def from_json(cls, text: str | None) -> Settings:
        """The settings a row holds (a name this rowferry does not know is left out)."""
        stored: dict[str, Any] = json.loads(text) if text else {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in stored.items() if k in known and v is not None})

    def __str__(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.items().items()) or "none"


@dataclass(frozen=True)
class Control:
    """A migration's hold (``paused``, ``cancelled`` or None) and its live settings."""

    hold: Hold | None
    settings: Settings


def read(conn: sa.Connection, name: str, *, end: bool = True) -> Control | None:
    """What migration ``name`` is told (None: it has no row). ``end``: end the read's
    transaction; a trip leaves it open before a chunk, which goes on in it (one statement
    between two chunks instead of two)."""
    stmt = sa.select(_t.c.control, _t.c.settings_json).where(_t.c.name == name)
    row = conn.execute(stmt).first()
    if end:
        conn.rollback()
    return None if row is None else _control(row.control, row.settings_json)


def of(state: MigrationState) -> Control:
    """What a state row read whole says."""
    return _control(state.control, state.settings_json)


def _control(hold: str | None, settings: str | None) -> Control:
    if hold == "paused":
        return Control("paused", Settings.from_json(settings))
    held: Hold | None = "cancelled" if hold == "cancelled" else None
    return Control(held, Settings.from_json(settings))


def hold(conn: sa.Connection, name: str, action: Action) -> bool:
    """Pause, resume or cancel migration ``name`` (commits); False when it was so already.

    Refused with a :class:`ConfigError`, nothing changed: an unknown name, pausing or
    cancelling a migration that is done, pausing or resuming one that is cancelled.
    """
    ensure_table(conn)  # a table of an older rowferry gets the control columns
    try:
        row = _locked(conn, name, _t.c.status, _t.c.control)
        wanted = _next_hold(name, row.status, row.control, action)
        if wanted == row.control:
            conn.rollback()
            return False
        values = {"control": wanted, "updated_at": utcnow()}
        conn.execute(_t.update().where(_t.c.name == name).values(**values))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return True


def change(conn: sa.Connection, name: str, settings: Settings, *, clear: bool = False) -> Settings:
    """Set migration ``name``'s live settings (commits): ``settings`` over those it had, or in
    their place with ``clear``. Returns the settings now in force; a trip takes them before its
    next chunk."""
    problems = settings.problems()
    if problems:
        raise ConfigError(f"migration {name!r}: " + "; ".join(problems))
    ensure_table(conn)
    try:
        row = _locked(conn, name, _t.c.settings_json)
        before = Settings() if clear else Settings.from_json(row.settings_json)
        now = before.merged(settings)
        values = {"settings_json": now.to_json(), "updated_at": utcnow()}
        conn.execute(_t.update().where(_t.c.name == name).values(**values))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return now


def _locked(conn: sa.Connection, name: str, *columns: sa.Column[Any]) -> sa.Row[Any]:
    row = conn.execute(sa.select(*columns).where(_t.c.name == name).with_for_update()).first()
    if row is None:
        raise ConfigError(f"no migration named {name!r} is recorded in this database")
    return row


def _next_hold(name: str, status: str, current: str | None, action: Action) -> Hold | None:
    """The hold ``action`` leaves migration ``name`` in, or the reason it is refused."""
    reset = f"'rowferry reset {name}' forgets its progress so that it starts over"
    if current == "cancelled" and action != "cancel":
        raise ConfigError(f"migration {name!r} is cancelled and cannot be {action}d; {reset}")
    if status == "done" and action != "resume":
        raise ConfigError(f"migration {name!r} is done: there is nothing to {action}")
    if action == "pause":
        return "paused"
    return "cancelled" if action == "cancel" else None
