"""Bad rows: kept aside in ``rowferry_quarantine`` (in the target database) with their key, the
reason and the source row as JSON, so that the rest of their chunk can proceed.

A row enters the quarantine in the same transaction as the chunk it belongs to, and leaves it in
the same transaction as its successful retry: every qualifying source key is either in the target
or in the quarantine, exactly once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rowferry import cursor, defaults, documents
from rowferry.state.tables import quarantine_table, utcnow

_q = quarantine_table


@dataclass(frozen=True)
class Entry:
    """One quarantined row."""

    migration: str
    key: cursor.Key
    reason: str
    row_json: str | None
    attempts: int
    created_at: dt.datetime
    updated_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "migration": self.migration,
            "key": list(self.key),
            "reason": self.reason,
            "row": self.row_json,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _hash(key_json: str) -> str:
    return hashlib.sha1(key_json.encode()).hexdigest()


def _exists(conn: sa.Connection) -> bool:
    return sa.inspect(conn).has_table(_q.name)


def add(
    conn: sa.Connection, migration: str, rows: Sequence[tuple[cursor.Key, str, dict[str, Any]]]
) -> None:
    """Quarantine ``(key, reason, source row)`` entries in the caller's transaction; an entry
    already there for the same key gets the new reason and one more attempt."""
    if not rows:
        return
    encoded = {cursor.encode(key): _kept(reason, row) for key, reason, row in rows}
    hashes = [_hash(k) for k in encoded]
    old = dict(
        conn.execute(
            sa.select(_q.c.key_hash, _q.c.attempts)
            .where(_q.c.migration == migration)
            .where(_q.c.key_hash.in_(hashes))
        ).all()
    )
    if old:
        conn.execute(_q.delete().where(_q.c.migration == migration).where(_q.c.key_hash.in_(old)))
    now = utcnow()
    conn.execute(
        _q.insert(),
        [
            dict(
                migration=migration,
                key_hash=_hash(k),
                key_json=k,
                reason=reason[:4000],
                row_json=row,
                attempts=old.get(_hash(k), 0) + 1,
                created_at=now,
                updated_at=now,
            )
            for k, (reason, row) in encoded.items()
        ],
    )


def _kept(reason: str, row: dict[str, Any]) -> tuple[str, str | None]:
    """The reason and the source row as JSON; a row too large to keep is said so instead."""
    try:
        text = documents.dumps(row)
    except (TypeError, ValueError):
        return reason, None
    if len(text) <= defaults.QUARANTINE_ROW_CHARS:
        return reason, text
    return f"{reason[:3900]} (the source row, {len(text):,} characters as JSON, is not kept)", None


def remove(conn: sa.Connection, migration: str, keys: Iterable[cursor.Key]) -> int:
    """Take these keys out of the quarantine (caller's transaction); return how many were in."""
    hashes = [_hash(cursor.encode(k)) for k in keys]
    if not hashes:
        return 0
    result = conn.execute(
        _q.delete().where(_q.c.migration == migration).where(_q.c.key_hash.in_(hashes))
    )
    return max(result.rowcount, 0)


def entries(conn: sa.Connection, migration: str, limit: int | None = None) -> list[Entry]:
    """The quarantined rows of a migration, oldest first."""
    if not _exists(conn):
        return []
    stmt = sa.select(_q).where(_q.c.migration == migration).order_by(_q.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    found = []
    for row in conn.execute(stmt).mappings():
        key = cursor.decode(row["key_json"]) or ()
        found.append(
            Entry(
                row["migration"],
                key,
                row["reason"],
                row["row_json"],
                row["attempts"],
                row["created_at"],
                row["updated_at"],
            )
        )
    return found


def quarantined_keys(conn: sa.Connection, migration: str) -> set[cursor.Key]:
    """Every quarantined key of a migration (an empty set when nothing was ever quarantined)."""
    if not _exists(conn):
        return set()
    rows = conn.execute(sa.select(_q.c.key_json).where(_q.c.migration == migration))
    return {key for (text,) in rows if (key := cursor.decode(text)) is not None}


def count(conn: sa.Connection, migration: str) -> int:
    if not _exists(conn):
        return 0
    stmt = sa.select(sa.func.count()).select_from(_q).where(_q.c.migration == migration)
    return int(conn.execute(stmt).scalar_one())
