"""rowferry: move rows with their related rows between SQL databases in bounded, resumable,
exactly-once trips.

The library is one function, :func:`run`, over a :class:`Migration` description::

    result = rowferry.run(migration, "mysql+pymysql://app@db/shop", budget=Budget(seconds=25))
"""

from .engine import Budget, ChunkDone, RunResult, run
from .errors import (
    AlreadyRunning,
    CheckpointConflict,
    ConfigError,
    ConnectError,
    CursorError,
    MigrationFailed,
    MigrationFileError,
    RowferryError,
    SchemaError,
    StateError,
    TransientError,
)
from .loader import load
from .shapes import Copy, Snapshot
from .spec import BelongsTo, HasMany, Migration, Target

__version__ = "0.1.0"

__all__ = [
    "AlreadyRunning",
    "BelongsTo",
    "Budget",
    "CheckpointConflict",
    "ChunkDone",
    "ConfigError",
    "ConnectError",
    "Copy",
    "CursorError",
    "HasMany",
    "Migration",
    "MigrationFailed",
    "MigrationFileError",
    "RowferryError",
    "RunResult",
    "SchemaError",
    "Snapshot",
    "StateError",
    "Target",
    "TransientError",
    "__version__",
    "load",
    "run",
]
