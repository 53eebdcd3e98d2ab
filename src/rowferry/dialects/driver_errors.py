"""Driver errors at rowferry's boundary: whether one is transient, and the rowferry error it
becomes (see :mod:`rowferry.errors`).

A run, a plan, a verify and a retry of quarantined rows judge the errors of the same two
databases, the source's and the target's, the same way: an error is transient when either
database's dialect says so (:meth:`rowferry.dialects.base.Dialect.is_transient`), and it leaves
rowferry as a :class:`TransientError` (retrying may succeed) or a :class:`MigrationFailed`, its
text passed through :func:`rowferry.urls.mask_secrets`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from rowferry.dialects.base import Dialect
from rowferry.dialects.lookup import dialect_for
from rowferry.errors import MigrationFailed, RowferryError, TransientError
from rowferry.urls import mask_secrets


class DriverErrors:
    """The errors of the connections to the databases of these dialects (source, target)."""

    def __init__(self, *dialects: Dialect) -> None:
        self.dialects = dialects

    def is_transient(self, exc: object) -> bool:
        """Whether retrying the failed transaction may succeed (deadlock, lost connection ...)."""
        return isinstance(exc, sa.exc.DBAPIError) and any(
            d.is_transient(exc) for d in self.dialects
        )

    def as_error(self, exc: BaseException, context: str) -> BaseException:
        """The error to raise for ``exc`` (``raise ... from exc``), its message beginning with
        ``context`` (what was being done, to which migration). rowferry's own errors and
        interruptions (``KeyboardInterrupt``, ``SystemExit``) stay as they are."""
        if isinstance(exc, RowferryError) or not isinstance(exc, Exception):
            return exc
        if isinstance(exc, sa.exc.DBAPIError):
            reason = mask_secrets(str(exc.orig)).strip()
            cls = TransientError if self.is_transient(exc) else MigrationFailed
            return cls(f"{context}: a statement failed: {reason}")
        return MigrationFailed(f"{context}: {type(exc).__name__}: {mask_secrets(str(exc))}")


@contextmanager
def boundary(src: sa.Connection, dst: sa.Connection, context: str) -> Iterator[DriverErrors]:
    """The errors of ``src`` and ``dst``; a driver error raised inside leaves as a rowferry
    error whose message begins with ``context``."""
    errors = DriverErrors(dialect_for(src), dialect_for(dst))
    try:
        yield errors
    except sa.exc.DBAPIError as exc:
        raise errors.as_error(exc, context) from exc
