"""Between two timed runs: the target emptied and both demo migrations' progress forgotten."""

from __future__ import annotations

from harness import reference
from rowferry.demo import order_history


def start_over(url: str) -> None:
    """Empty the target and forget the progress of both demo migrations."""
    migrations = [order_history.migration, getattr(order_history, "pushdown_migration", None)]
    for migration in migrations:
        if migration is not None:
            reference.start_over(url, migration.name)
