"""Progress in the target database: one row per migration in ``rowferry_state``.

A trip begins by taking the row's lease: ``token`` goes up by one (the fencing token) and
``owner``/``lease_until`` are set. Each chunk's checkpoint is an UPDATE guarded by
``name``, ``token`` and the chunk count it expects (compare-and-set), executed in the same
transaction as the chunk's writes: either both commit or neither does. An UPDATE that matches
no row raises :class:`CheckpointConflict`; it never passes silently.

The row also records what its progress belongs to, the migration's identity
(:mod:`rowferry.state.identity`): the source table, the key columns with their types, the filter
with its parameters' values, and the target table. A trip whose migration no longer has the
recorded identity is refused before anything is written, whatever the row's status (``done``
too): its cursor would point into other rows, or order them otherwise. The conflict policy,
the transform, the relations and the source database's address are not part of it; a
migration is run again with a fixed transform or another policy and resumes. A row without an
identity (written by an older rowferry) takes the trip's identity unchecked; the lease's
compare-and-set writes it on every trip, and a ``done`` row's only when it differs.

The columns ``control`` and ``settings_json`` are written from outside the trips
(:mod:`rowferry.state.control`) and read by them between chunks; no statement here writes
them, so such a change neither moves the token nor is undone by a checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import sqlalchemy as sa

from rowferry.errors import AlreadyRunning, CheckpointConflict, MigrationChanged
from rowferry.state.identity import Identity
from rowferry.state.tables import (
    STATE_TABLE as STATE_TABLE,  # re-exported, with the table and clock
)
from rowferry.state.tables import metadata
from rowferry.state.tables import state_table as state_table
from rowferry.state.tables import utcnow as utcnow

Status = Literal["new", "running", "stopped", "done", "caught_up", "failed"]

_t = state_table


def make_owner() -> str:
    """``host:pid:random``: names this run in the lease and lets a dead owner be recognised."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_alive(owner: str | None) -> bool:
    """False only when the owner is a process of this host that no longer exists."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class MigrationState:
    """One migration's row of ``rowferry_state`` as read."""

    name: str
    status: str
    cursor_json: str | None
    key_columns: str
    identity: str | None
    rows_read: int
    rows_written: int
    rows_quarantined: int
    chunks: int
    trips: int
    rows_total: int | None
    seconds_per_row: float | None
    token: int
    owner: str | None
    lease_until: dt.datetime | None
    source: str | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    last_trip_at: dt.datetime | None
    finished_at: dt.datetime | None
    follow_json: str | None = None
    #: ``paused`` or ``cancelled`` from outside, and the live settings as JSON
    #: (:mod:`rowferry.state.control`)
    control: str | None = None
    settings_json: str | None = None
    #: seconds its trips yielded to the database (gates and pauses), and the last gate
    #: readings as JSON (:mod:`rowferry.engine.pacing`)
    throttled_seconds: float | None = None
    gates_json: str | None = None

    @property
    def rows_left(self) -> int | None:
        if self.status in ("done", "caught_up"):
            return 0
        return None if self.rows_total is None else max(self.rows_total - self.rows_read, 0)

    @property
    def display_status(self) -> str:
        """``running``, ``interrupted`` (lease expired or owner gone), ``stopped`` (by the
        time budget, a chunk limit or a signal: run it again), ``done``, ``caught_up`` (a
        followed migration that has captured every change up to its watermark: run it again
        to capture what changed since), ``failed`` or ``new``; ``paused`` or ``cancelled``
        (from outside) unless it is done."""
        if self.control is not None and self.status != "done":
            return self.control
        if self.status == "running":
            live = self.lease_until is not None and self.lease_until > utcnow()
            return "running" if live and owner_alive(self.owner) else "interrupted"
        return self.status

    @property
    def rows_per_second(self) -> float | None:
        """The rate of the chunks measured last: their work, not the pauses, the throttling or
        the time between trips."""
        return 1 / self.seconds_per_row if self.seconds_per_row else None

    @property
    def eta_seconds(self) -> float | None:
        """The time the rows left take at :attr:`rows_per_second` (None: not known, or
        cancelled)."""
        left = self.rows_left
        if self.control == "cancelled" or left is None or self.seconds_per_row is None:
            return None
        return left * self.seconds_per_row

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows_left"] = self.rows_left
        data["rows_per_second"] = self.rows_per_second
        data["eta_seconds"] = self.eta_seconds
        data["settings"] = json.loads(data.pop("settings_json") or "{}")
        data["gates"] = json.loads(data.pop("gates_json") or "[]")
        return data


def ensure_table(conn: sa.Connection) -> None:
    """Create ``rowferry_state`` and ``rowferry_quarantine`` if they do not exist, and add the
    columns an older rowferry did not have (its own transaction).

    One probe statement when both tables are there with every column (the usual case): that is
    a statement per trip instead of one catalog query per table and one per column list.
    """
    if _tables_complete(conn):
        return
    try:
        metadata.create_all(conn, checkfirst=True)
        conn.commit()
    except sa.exc.DBAPIError:  # another run created it between our check and our CREATE
        conn.rollback()
        if not sa.inspect(conn).has_table(STATE_TABLE):
            raise
        conn.rollback()
    _add_missing_columns(conn, state_table)


def _columns_probe(table: sa.Table) -> sa.Exists:
    """``EXISTS`` over no row of ``table`` naming every column of it: a statement holding it
    fails when the table or one of its columns is missing (every database resolves the names)."""
    return sa.select(*table.c).where(sa.false()).exists()


def _tables_complete(conn: sa.Connection) -> bool:
    """Whether rowferry's tables exist with every column (a query that reads no row)."""
    probe = sa.select(*(_columns_probe(t) for t in metadata.tables.values()))
    try:
        conn.execute(probe).all()
    except sa.exc.DBAPIError:
        conn.rollback()
        return False
    conn.rollback()
    return True


def _add_missing_columns(conn: sa.Connection, table: sa.Table) -> None:
    """Upgrade a state table written by an older rowferry: add the columns it lacks (every
    column added after the first release is nullable or has a server default)."""
    present = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
    missing = [c for c in table.columns if c.name not in present]
    for column in missing:
        ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
    conn.commit()


def table_exists(conn: sa.Connection) -> bool:
    exists = sa.inspect(conn).has_table(STATE_TABLE)
    conn.rollback()
    return exists


def read(conn: sa.Connection, name: str, *, lock: bool = False) -> MigrationState | None:
    stmt = sa.select(_t).where(_t.c.name == name)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    return None if row is None else MigrationState(**row)


def read_all(conn: sa.Connection) -> list[MigrationState]:
    """Every migration's row, in a read of its own (see :func:`peek`)."""
    return _read_rows(conn, sa.true())


def peek(conn: sa.Connection, name: str) -> MigrationState | None:
    """One migration's row, read outside a trip in a transaction of its own: a table written by
    an older rowferry, which no trip has upgraded yet, reads with the defaults of the columns
    it lacks."""
    found = _read_rows(conn, _t.c.name == name)
    return found[0] if found else None


def _read_rows(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[MigrationState]:
    """The rows matching ``where``, with the table's columns as they are (then rolls back)."""
    try:
        rows = conn.execute(sa.select(_t).where(where).order_by(_t.c.name)).mappings().all()
        missing: dict[str, Any] = {}
    except sa.exc.DBAPIError:
        conn.rollback()
        present = {c["name"] for c in sa.inspect(conn).get_columns(_t.name)}
        missing = {c.name: _value_when_missing(c) for c in _t.c if c.name not in present}
        if not missing:
            raise
        stmt = sa.select(*(c for c in _t.c if c.name in present)).where(where)
        rows = conn.execute(stmt.order_by(_t.c.name)).mappings().all()
    conn.rollback()
    return [MigrationState(**(missing | dict(row))) for row in rows]


def _value_when_missing(column: sa.Column[Any]) -> Any:
    """What a column added since a table's layout holds in its rows: its server default."""
    default = column.server_default
    if isinstance(default, sa.DefaultClause) and isinstance(default.arg, str):
        return column.type.python_type(default.arg)
    return None


def begin_trip(
    conn: sa.Connection,
    name: str,
    identity: Identity,
    owner: str,
    lease_until: dt.datetime,
    source: str,
    *,
    follows: bool = False,
) -> MigrationState:
    """Take the lease for a new trip and return the state it starts from (commits); create
    rowferry's tables first if they are missing or lack a column (:func:`ensure_table`).

    A migration whose ``identity`` differs from its row's is refused with a
    :class:`MigrationChanged` before any write. A migration that is done is returned as it is,
    without a lease, unless it ``follows`` its source (it was done before it was told to).
    Statements, in the usual cases: a migration seen before, its row read and locked (with
    the tables' probe in the same statement), then one compare-and-set; a new one, the same
    read, then one INSERT of its row already leased.
    """
    recorded = identity.to_json()
    try:
        current = _read_probing(conn, name)
        if current is None:
            conn.rollback()  # MySQL: release the gap lock of the read before inserting
            created = _insert(conn, name, identity, source, owner, lease_until)
            if created is not None:
                return created
            current = read(conn, name, lock=True)  # another run created it at this moment
            assert current is not None
        _check_startable(current, identity, owner)
        if current.control is not None:  # paused or cancelled: the trip takes no lease
            conn.rollback()
            return current
        if current.status == "done" and not follows:
            return _adopt_when_done(conn, current, recorded)
        now = utcnow()
        values: dict[str, Any] = dict(
            identity=recorded,
            token=current.token + 1,
            status="running",
            owner=owner,
            lease_until=lease_until,
            trips=current.trips + 1,
            last_trip_at=now,
            updated_at=now,
            error=None,
            source=source,
            finished_at=None,
        )
        _cas(conn, current, values)
        conn.commit()
    except CheckpointConflict:  # another run took the lease between our read and our update
        conn.rollback()
        raise AlreadyRunning(
            f"migration {name!r} was started by another run at this moment", "?", "?"
        ) from None
    except BaseException:
        conn.rollback()
        raise
    return replace(current, **values)


def _adopt_when_done(conn: sa.Connection, current: MigrationState, recorded: str) -> MigrationState:
    """A done migration takes no lease; its row records the trip's identity when it lacks it
    (none yet, or fewer parts)."""
    if current.identity == recorded:
        conn.rollback()
        return current
    _cas(conn, current, {"identity": recorded})
    conn.commit()
    return replace(current, identity=recorded)


def _read_probing(conn: sa.Connection, name: str) -> MigrationState | None:
    """:func:`read` with the lock, in a statement that also probes rowferry's other tables
    (:func:`_columns_probe`): when it fails, a table or a column is missing, and
    :func:`ensure_table` creates or upgrades them before the plain read."""
    others = [t for t in metadata.tables.values() if t is not _t]
    probes = [_columns_probe(t).label(f"rf_probe_{i}") for i, t in enumerate(others)]
    stmt = sa.select(*_t.c, *probes).where(_t.c.name == name).with_for_update()
    try:
        row = conn.execute(stmt).mappings().first()
    except sa.exc.DBAPIError:
        conn.rollback()
        ensure_table(conn)
        return read(conn, name, lock=True)
    return None if row is None else MigrationState(**{c.name: row[c.name] for c in _t.c})


def _insert(
    conn: sa.Connection,
    name: str,
    identity: Identity,
    source: str,
    owner: str,
    lease_until: dt.datetime,
) -> MigrationState | None:
    """Create a new migration's row with this trip's lease already taken (token 1), and commit.
    When two runs start a new migration at once, the second INSERT waits for the first and
    fails on the duplicate key: it returns None and reads the row the first one made (no
    locking read holds a gap lock here, so no deadlock)."""
    now = utcnow()
    created = MigrationState(
        name=name,
        status="running",
        cursor_json=None,
        key_columns=",".join(identity.key_names),
        identity=identity.to_json(),
        rows_read=0,
        rows_written=0,
        rows_quarantined=0,
        chunks=0,
        trips=1,
        rows_total=None,
        seconds_per_row=None,
        token=1,
        owner=owner,
        lease_until=lease_until,
        source=source,
        error=None,
        created_at=now,
        updated_at=now,
        last_trip_at=now,
        finished_at=None,
    )
    try:
        conn.execute(_t.insert().values(**asdict(created)))
        conn.commit()
    except sa.exc.IntegrityError:
        conn.rollback()
        return None
    return created


def _check_startable(current: MigrationState, identity: Identity, owner: str) -> None:
    _check_identity(current, identity)
    key_columns = ",".join(identity.key_names)
    if current.key_columns != key_columns:
        raise MigrationChanged(
            f"migration {current.name!r} was started with key ({current.key_columns}) but now "
            f"uses ({key_columns}); its cursor does not fit. Run 'rowferry reset {current.name}' "
            "to start over"
        )
    live = current.lease_until is not None and current.lease_until > utcnow()
    if (
        current.status == "running"
        and live
        and current.owner != owner
        and owner_alive(current.owner)
    ):
        until = current.lease_until.isoformat() if current.lease_until else "?"
        raise AlreadyRunning(
            f"migration {current.name!r} is already running (owner {current.owner}, lease "
            f"until {until} UTC); try again later",
            owner=current.owner or "?",
            until=until,
        )


def _check_identity(current: MigrationState, identity: Identity) -> None:
    """Refuse a migration that is no longer the one its row's progress belongs to."""
    changes = identity.changes_since(current.identity)
    if changes:
        name, where = current.name, f"{current.display_status}, rows read: {current.rows_read:,}"
        raise MigrationChanged(
            f"migration {name!r} ({where}) is not the migration its saved progress belongs "
            f"to: {'; '.join(changes)}. Nothing was written. Give the migration a new name to "
            f"run it as a new one, or run 'rowferry reset {name}' to forget its progress and "
            "start over (rows already in the target stay there)"
        )


def _cas(conn: sa.Connection, expected: MigrationState, values: dict[str, Any]) -> None:
    """UPDATE the row only if it still has the token and chunk count we read; else fail."""
    result = conn.execute(
        _t.update()
        .where(_t.c.name == expected.name)
        .where(_t.c.token == expected.token)
        .where(_t.c.chunks == expected.chunks)
        .values(**values)
    )
    if result.rowcount != 1:
        raise CheckpointConflict(
            f"migration {expected.name!r}: its state row changed under this run (token "
            f"{expected.token}, {expected.chunks} chunks expected): another run took over or "
            "the migration was reset; nothing from this chunk was committed"
        )


def checkpoint(
    conn: sa.Connection,
    current: MigrationState,
    cursor_json: str,
    rows_read: int,
    rows_written: int,
    rows_quarantined: int,
    seconds_per_row: float | None,
    lease_until: dt.datetime,
    *,
    last: bool = False,
    follow_json: str | None = None,
) -> MigrationState:
    """Record a chunk in the caller's open transaction; the caller commits it with the writes.

    The ``last`` chunk also ends the trip as :func:`end_trip` would (status ``done``, lease
    released), in the same statement. ``follow_json``: a followed migration's position, saved
    with the chunk (its backlog's last chunk starts following instead of ending). Every
    checkpoint sets the same columns, the last one too, so that its statement is compiled once.
    """
    now = utcnow()
    values = _chunk_values(current, lease_until, now)
    values.update(
        cursor_json=cursor_json,
        rows_read=current.rows_read + rows_read,
        rows_written=current.rows_written + rows_written,
        rows_quarantined=current.rows_quarantined + rows_quarantined,
        rows_total=current.rows_total,
        seconds_per_row=seconds_per_row,
        follow_json=current.follow_json if follow_json is None else follow_json,
    )
    if last:
        values.update(_ended("done", None, now))
    _cas(conn, current, values)
    return replace(current, **values)


def checkpoint_follow(
    conn: sa.Connection,
    current: MigrationState,
    follow_json: str,
    lease_until: dt.datetime,
    *,
    caught_up: bool,
) -> MigrationState:
    """Record a chunk of a followed migration's changes (its position) in the caller's open
    transaction; ``caught_up``: the chunk reached the watermark, and the trip ends."""
    now = utcnow()
    values = _chunk_values(current, lease_until, now)
    values["follow_json"] = follow_json
    if caught_up:
        values.update(_ended("caught_up", None, now))
    _cas(conn, current, values)
    return replace(current, **values)


def _chunk_values(
    current: MigrationState, lease_until: dt.datetime, now: dt.datetime
) -> dict[str, Any]:
    """What every chunk's checkpoint sets: one chunk more, the lease moved on, and the columns
    its end may change, as they are (so that the last chunk's statement is the same one)."""
    return dict(
        chunks=current.chunks + 1,
        lease_until=lease_until,
        status=current.status,
        owner=current.owner,
        updated_at=now,
        error=current.error,
        finished_at=current.finished_at,
        throttled_seconds=current.throttled_seconds,
        gates_json=current.gates_json,
    )


def save_follow(conn: sa.Connection, current: MigrationState, follow_json: str) -> MigrationState:
    """Save a followed migration's position on its own (its own transaction)."""
    values: dict[str, Any] = dict(follow_json=follow_json, updated_at=utcnow())
    _cas_committed(conn, current, values)
    return replace(current, **values)


def adjust(conn: sa.Connection, name: str, written: int, quarantined: int) -> None:
    """Add to the counters of a migration (caller's transaction), as a quarantine retry does."""
    conn.execute(
        _t.update()
        .where(_t.c.name == name)
        .values(
            rows_written=_t.c.rows_written + written,
            rows_quarantined=_t.c.rows_quarantined + quarantined,
            updated_at=utcnow(),
        )
    )


def end_trip(
    conn: sa.Connection, current: MigrationState, status: Status, error: str | None = None
) -> None:
    """Release the lease and record how the trip ended (its own transaction)."""
    values = _ended(status, error, utcnow())
    values["rows_total"] = current.rows_total
    values["throttled_seconds"] = current.throttled_seconds
    values["gates_json"] = current.gates_json
    _cas_committed(conn, current, values)


def extend_lease(
    conn: sa.Connection, current: MigrationState, lease_until: dt.datetime
) -> MigrationState:
    """Move the trip's lease to end at ``lease_until`` (its own transaction): a
    compare-and-set like a checkpoint's, so a run that was taken over learns it here."""
    values: dict[str, Any] = dict(lease_until=lease_until)
    _cas_committed(conn, current, values)
    return replace(current, **values)


def _cas_committed(conn: sa.Connection, current: MigrationState, values: dict[str, Any]) -> None:
    """:func:`_cas` in its own transaction: committed, or rolled back when it fails."""
    try:
        _cas(conn, current, values)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _ended(status: Status, error: str | None, now: dt.datetime) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        status=status, owner=None, lease_until=None, updated_at=now, error=error
    )
    if status in ("done", "caught_up"):
        values["finished_at"] = now
    return values


def reset(conn: sa.Connection, name: str) -> bool:
    """Forget a migration's progress and its quarantined rows; return whether there was any."""
    deleted = conn.execute(_t.delete().where(_t.c.name == name)).rowcount
    quarantine = metadata.tables.get("rowferry_quarantine")
    if quarantine is not None and sa.inspect(conn).has_table(quarantine.name):
        conn.execute(quarantine.delete().where(quarantine.c.migration == name))
    conn.commit()
    return bool(deleted)
