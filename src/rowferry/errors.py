"""rowferry's exceptions: one tree, every message says what, where, and what to do.

    RowferryError
    ├── ConfigError            bad configuration, refused before the first write
    │   ├── MigrationFileError the migration file cannot be loaded or holds no valid migration
    │   └── SchemaError        a table, column, key or unique constraint is missing or unfit
    ├── ConnectError           a URL that cannot be parsed, a server that cannot be reached or
    │                          refuses the credentials
    ├── CursorError            a cursor that cannot round-trip through JSON or did not advance
    ├── StateError             the state row is not what this run expected
    │   ├── CheckpointConflict the compare-and-set on the state row touched 0 rows
    │   ├── AlreadyRunning     another run holds a live lease on the migration
    │   └── MigrationChanged   the migration is not the one its saved progress belongs to
    │                          (refused before any write)
    └── MigrationFailed        a statement failed while moving rows (wraps the driver error)
        ├── TransientError     the same, but retrying may succeed (deadlock, lost connection ...)
        └── RowRejected        the target cannot take a row's values, found on the client side
                               (a value its encoding cannot hold, a row larger than a packet
                               ...); the chunk quarantines that row and writes the others

Driver exceptions are mapped at the boundary (:mod:`rowferry.dialects.driver_errors`, ``raise ...
from exc``) and their text is passed through :func:`rowferry.urls.mask_secrets` so that a password
never reaches a message.
"""

from __future__ import annotations


class RowferryError(Exception):
    """Base of every error rowferry raises on purpose."""


class ConfigError(RowferryError):
    """The configuration or the migration definition is invalid; nothing was written."""


class MigrationFileError(ConfigError):
    """The migration file could not be loaded, or holds no usable migration."""


class SchemaError(ConfigError):
    """A table, column, key or unique constraint the migration needs is missing or unfit."""


class ConnectError(RowferryError):
    """A database URL is invalid, or the server cannot be reached or refuses the login."""


class CursorError(RowferryError):
    """A keyset cursor cannot be stored losslessly, or failed to advance."""


class StateError(RowferryError):
    """The migration's state row is not in the state this run expected."""


class CheckpointConflict(StateError):
    """The checkpoint's compare-and-set matched no row: another run took over, or a reset."""


class MigrationChanged(StateError):
    """The migration's source table, key, filter or target changed since its progress was
    saved: refused before any write (rename it, or reset it)."""


class AlreadyRunning(StateError):
    """Another run holds a live lease on this migration."""

    def __init__(self, message: str, owner: str, until: str) -> None:
        super().__init__(message)
        self.owner = owner
        self.until = until


class MigrationFailed(RowferryError):
    """A statement failed while the migration was moving rows."""


class TransientError(MigrationFailed):
    """A failure that may succeed on retry: deadlock, lock wait timeout, lost connection."""


class RowRejected(MigrationFailed):
    """The target cannot take the values of some row of a write, found before or while sending
    it rather than by the server: a string its encoding cannot hold, a row larger than the
    server's packet, a value its column's type cannot take. Like a row the server refuses, the
    row is found by bisection and quarantined; it is never retried."""
