"""A followed migration's position and checkpoints (see :mod:`rowferry.migration.follow`).

The position is kept in the state row's ``follow_json``, beside the backlog's cursor:

- ``phase``: ``backlog`` while the key is walked the first time, then ``changes`` or
  ``sweep``;
- ``since`` (:class:`Changes`): the change column's lower bound for the first read of changes,
  the database's clock when the migration started, minus the lag: a row that changed after the
  backlog walk passed its key has a later change, so it comes again;
- ``after``: the last row read in the changes (its change value, then its key) or, for a sweep,
  the last key examined in the current pass;
- the rows read, written and quarantined since the backlog.

Each chunk of changes commits its rows with the position, as a backlog chunk commits with its
cursor; the chunk that reaches the watermark ends the trip ``caught_up``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any, Literal

import sqlalchemy as sa

from rowferry import cursor
from rowferry.chunks import contract
from rowferry.dialects.base import Dialect
from rowferry.migration.follow import Changes, Follow
from rowferry.state import store as state

Phase = Literal["backlog", "changes", "sweep"]


@dataclass(frozen=True)
class Position:
    """Where a followed migration stands."""

    phase: Phase
    since: dt.datetime | None = None
    after: cursor.Key | None = None
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    #: completed catch-ups (changes) or passes (sweep)
    rounds: int = 0

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "phase": self.phase,
            "since": None if self.since is None else cursor.to_json((self.since,))[0],
            "after": None if self.after is None else cursor.to_json(self.after),
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined,
            "rounds": self.rounds,
        }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Position | None:
        if text is None:
            return None
        data = json.loads(text)
        since = cursor.decode(json.dumps([data["since"]])) if data.get("since") else None
        after = cursor.decode(json.dumps(data["after"])) if data.get("after") else None
        return cls(
            phase=data["phase"],
            since=None if since is None else since[0],
            after=after,
            rows_read=int(data.get("rows_read", 0)),
            rows_written=int(data.get("rows_written", 0)),
            rows_quarantined=int(data.get("rows_quarantined", 0)),
            rounds=int(data.get("rounds", 0)),
        )

    def following(self) -> Position:
        """The position once the backlog is done: changes when they are read from a time,
        else a sweep."""
        return replace(self, phase="changes" if self.since is not None else "sweep")

    def advanced(self, last_key: cursor.Key, counts: tuple[int, int, int], end: bool) -> Position:
        """After a chunk: its last row, its counts; at the ``end`` of a sweep's pass the next
        pass starts from the first key."""
        rows_read, rows_written, rows_quarantined = counts
        return replace(
            self,
            after=None if end and self.phase == "sweep" else last_key,
            rows_read=self.rows_read + rows_read,
            rows_written=self.rows_written + rows_written,
            rows_quarantined=self.rows_quarantined + rows_quarantined,
            rounds=self.rounds + int(end),
        )


def start(
    follow: Follow, current: state.MigrationState, src: sa.Connection, dialect: Dialect
) -> Position:
    """The position of a followed migration whose state row has none yet: changes are read
    from when the migration started (its state row was created), minus the lag, in the time
    the change column holds."""
    if not isinstance(follow, Changes):
        return Position("backlog")
    offset = dt.timedelta(0)
    if follow.clock == "local":
        offset = dialect.now(src, "local") - dialect.now(src, "utc")
    if src.in_transaction():
        src.rollback()
    since = current.created_at + offset - dt.timedelta(seconds=follow.lag)
    return Position("backlog", since=since)


def watermark(follow: Changes, src: sa.Connection, dialect: Dialect) -> dt.datetime:
    """Up to where this trip reads changes: the database's clock minus the lag."""
    now = dialect.now(src, follow.clock)
    if src.in_transaction():
        src.rollback()
    return now - dt.timedelta(seconds=follow.lag)


def backlog_checkpoint(
    conn: sa.Connection,
    current: state.MigrationState,
    last_key: cursor.Key,
    counts: tuple[int, int, int],
    seconds_per_row: float | None,
    lease_until: Any,
    last: bool,
) -> state.MigrationState:
    """A followed migration's backlog chunk: as any backlog chunk, except that the last one
    starts following (the position's phase moves on in the same commit) instead of ending."""
    position = Position.from_json(current.follow_json)
    assert position is not None, "a followed migration's position is saved before its chunks"
    follow_json = position.following().to_json() if last else None
    return contract.commit(
        conn,
        current,
        last_key,
        counts,
        seconds_per_row,
        lease_until,
        last=False,
        follow_json=follow_json,
    )


def changes_checkpoint(
    conn: sa.Connection,
    current: state.MigrationState,
    last_key: cursor.Key,
    counts: tuple[int, int, int],
    seconds_per_row: float | None,
    lease_until: Any,
    last: bool,
) -> state.MigrationState:
    """A chunk of changes (or of a sweep): the position moves past it; the ``last`` one has
    reached the watermark (or the end of the pass), and the migration is caught up."""
    position = Position.from_json(current.follow_json)
    assert position is not None, "a followed migration's position is saved before its chunks"
    moved = position.advanced(last_key, counts, last)
    current = state.checkpoint_follow(conn, current, moved.to_json(), lease_until, caught_up=last)
    return contract.committed(conn, current)
