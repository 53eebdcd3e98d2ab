"""Tables as plain text columns, for output that is not a terminal (a pipe, a file): the status
of migrations and the simulator's invocations. No rich: a script that reads them loads nothing
it does not need, and finds no box-drawing characters in its input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rowferry.state.store import MigrationState

STATUS_HEADERS = (
    "migration",
    "state",
    "rows done",
    "rows left",
    "quarantined",
    "chunks",
    "trips",
    "last trip (UTC)",
)
#: the columns of the status table that hold counts, aligned right
STATUS_NUMBERS = frozenset({2, 3, 4, 5, 6})


def status_rows(migrations: list[MigrationState]) -> list[tuple[str, ...]]:
    """One row of cells per migration, in the order of :data:`STATUS_HEADERS`."""
    rows: list[tuple[str, ...]] = []
    for m in migrations:
        left = "?" if m.rows_left is None else f"{m.rows_left:,}"
        last = m.last_trip_at.isoformat(sep=" ") if m.last_trip_at else "-"
        counts = (f"{m.rows_read:,}", left, f"{m.rows_quarantined:,}", f"{m.chunks:,}")
        rows.append((m.name, m.display_status, *counts, f"{m.trips:,}", last))
    return rows


def status_lines(migrations: list[MigrationState]) -> list[str]:
    """The status table as plain columns, then each migration's error, if it has one."""
    lines = plain_table(STATUS_HEADERS, status_rows(migrations), STATUS_NUMBERS)
    return lines + [f"{m.name} error: {m.error}" for m in migrations if m.error]


def plain_table(
    headers: tuple[str, ...] | list[str], rows: list[tuple[str, ...]], right: frozenset[int]
) -> list[str]:
    """Columns separated by two spaces; those numbered in ``right`` aligned right."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: tuple[str, ...] | list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if number in right else cell.ljust(width)
            for number, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), *(line(row) for row in rows)]
