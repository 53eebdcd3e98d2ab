"""How a migration follows its source after the backlog: rows that qualify late.

On a live database rows keep changing after a migration's cursor has passed their key: an old
order is collected today and reaches a final status. A migration with ``follow=`` does not end
``done`` after its backlog; it ends ``caught up``, and each later trip captures what qualified
since, cheaply when nothing did:

- :class:`Changes` reads a change column (``updated_at``, with the key as tie-breaker) in
  order, up to a watermark that stays ``lag`` seconds behind the database's clock, so that a
  row written by a transaction that commits late is not passed over. Each row that changed
  comes again, and the target's conflict policy says what happens to its earlier snapshot:
  ``Target(on_conflict="skip")`` keeps the first, ``"update"`` replaces it with the latest, and a
  unique key that includes the change column appends a version per change.
- :class:`Sweep` needs no change column: trip by trip it walks the source's keys and writes the
  qualifying rows the target lacks (an anti-join; source and target in one database). It finds
  rows that are missing, not rows that changed after their snapshot: the first snapshot stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from rowferry import defaults
from rowferry.errors import ConfigError

Clock: TypeAlias = Literal["utc", "local"]


@dataclass(frozen=True)
class Changes:
    """Follow the source through its change column.

    ``column``: a date-time column the application sets on every change of a row (an index
    starting with it keeps each trip's query cheap). ``lag``: seconds the watermark stays
    behind the database's clock; it must be longer than the longest write transaction, plus
    the clock skew of the application servers if they set the column. ``clock``: the time
    the column holds, ``"utc"`` (the default) or the database session's ``"local"`` time.
    """

    column: str
    lag: float = defaults.FOLLOW_LAG_SECONDS
    clock: Clock = "utc"

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise ConfigError("Changes(column=...) names the source's change column")
        if not isinstance(self.lag, int | float) or self.lag < 0:
            raise ConfigError(f"Changes(lag={self.lag!r}): seconds, zero or more")
        if self.clock not in ("utc", "local"):
            raise ConfigError(f"Changes(clock={self.clock!r}): 'utc' or 'local'")


@dataclass(frozen=True)
class Sweep:
    """Follow the source by finding the qualifying rows the target lacks.

    ``keys``: source keys examined per step of the walk (each step one anti-join over a key
    range, so no statement scans the whole table).
    """

    keys: int = field(default=defaults.SWEEP_KEYS)

    def __post_init__(self) -> None:
        if not isinstance(self.keys, int) or self.keys < 1:
            raise ConfigError(f"Sweep(keys={self.keys!r}): a positive number of keys")


Follow: TypeAlias = Changes | Sweep
