"""rowferry: move rows with their related rows between SQL databases in bounded, resumable,
exactly-once trips.

The library is one function, :func:`run`, over a :class:`Migration` description::

    result = rowferry.run(migration, "mysql+pymysql://app@db/shop", budget=Budget(seconds=25))

The public names are imported on first use (:func:`__getattr__`), so that ``import rowferry``
(and ``rowferry --version``) does not load SQLAlchemy before something needs it.
"""

import importlib as _importlib
import logging as _logging
import typing as _typing

if _typing.TYPE_CHECKING:
    from rowferry.engine.budget import Budget
    from rowferry.engine.run import ChunkDone, RunResult, run
    from rowferry.engine.throttle import Check, HistoryLength, ReplicaLag, ThreadsRunning, Throttle
    from rowferry.errors import (
        AlreadyRunning,
        CheckpointConflict,
        ConfigError,
        ConnectError,
        CursorError,
        MigrationChanged,
        MigrationFailed,
        MigrationFileError,
        RowferryError,
        SchemaError,
        StateError,
        TransientError,
    )
    from rowferry.migration.file import load
    from rowferry.migration.follow import Changes, Sweep
    from rowferry.migration.shapes import Copy, Snapshot
    from rowferry.migration.spec import BelongsTo, HasMany, Migration, Target

__version__ = "0.1.0"

#: Each public name and the module it comes from.
_HOMES = {
    "AlreadyRunning": "errors",
    "MigrationChanged": "errors",
    "BelongsTo": "migration.spec",
    "Budget": "engine.budget",
    "CheckpointConflict": "errors",
    "ChunkDone": "engine.run",
    "ConfigError": "errors",
    "ConnectError": "errors",
    "Copy": "migration.shapes",
    "CursorError": "errors",
    "HasMany": "migration.spec",
    "Migration": "migration.spec",
    "MigrationFailed": "errors",
    "MigrationFileError": "errors",
    "RowferryError": "errors",
    "RunResult": "engine.run",
    "SchemaError": "errors",
    "Snapshot": "migration.shapes",
    "StateError": "errors",
    "Target": "migration.spec",
    "TransientError": "errors",
    "load": "migration.file",
    "Throttle": "engine.throttle",
    "ReplicaLag": "engine.throttle",
    "ThreadsRunning": "engine.throttle",
    "HistoryLength": "engine.throttle",
    "Check": "engine.throttle",
    "Changes": "migration.follow",
    "Sweep": "migration.follow",
    "run": "engine.run",
}

__all__ = [
    "AlreadyRunning",
    "BelongsTo",
    "Budget",
    "Changes",
    "Check",
    "CheckpointConflict",
    "ChunkDone",
    "ConfigError",
    "ConnectError",
    "Copy",
    "CursorError",
    "HasMany",
    "HistoryLength",
    "Migration",
    "MigrationChanged",
    "MigrationFailed",
    "MigrationFileError",
    "ReplicaLag",
    "RowferryError",
    "RunResult",
    "SchemaError",
    "Snapshot",
    "StateError",
    "Sweep",
    "Target",
    "ThreadsRunning",
    "Throttle",
    "TransientError",
    "__version__",
    "load",
    "run",
]

# A library leaves the choice of handlers to the application: without one configured, the
# ``rowferry`` logger's records are dropped instead of reaching Python's last-resort handler
# (which would print every failure a second time beside the exception that reports it).
_logging.getLogger(__name__).addHandler(_logging.NullHandler())


def __getattr__(name: str) -> _typing.Any:
    """Import a public name's module on first use, and keep the name here."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rowferry' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
