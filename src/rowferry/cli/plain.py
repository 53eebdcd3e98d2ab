"""Tables as plain text columns, for output that is not a terminal (a pipe, a file): the status
of migrations and the simulator's invocations. No rich: a script that reads them loads nothing
it does not need, and finds no box-drawing characters in its input.
"""

from __future__ import annotations

import json
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
    "rows/s",
    "ETA",
    "last trip (UTC)",
)
#: the columns of the status table that hold counts, aligned right
STATUS_NUMBERS = frozenset({2, 3, 4, 5, 6, 7, 8})


def status_rows(migrations: list[MigrationState]) -> list[tuple[str, ...]]:
    """One row of cells per migration, in the order of :data:`STATUS_HEADERS`."""
    rows: list[tuple[str, ...]] = []
    for m in migrations:
        left = "?" if m.rows_left is None else f"{m.rows_left:,}"
        last = m.last_trip_at.isoformat(sep=" ") if m.last_trip_at else "-"
        counts = (f"{m.rows_read:,}", left, f"{m.rows_quarantined:,}", f"{m.chunks:,}")
        rate = "?" if m.rows_per_second is None else f"{m.rows_per_second:,.0f}"
        pace = (rate, _eta(m))
        rows.append((m.name, m.display_status, *counts, f"{m.trips:,}", *pace, last))
    return rows


def _eta(m: MigrationState) -> str:
    if m.display_status in ("done", "caught_up", "cancelled"):
        return "-"
    return "?" if m.eta_seconds is None else duration(m.eta_seconds)


def duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h07m``, ``2d04h``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 48 * 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def status_details(migrations: list[MigrationState]) -> list[str]:
    """After the table, for each migration that has them: its error, the time its trips were
    throttled with the last reading of each gate, and its settings."""
    from rowferry.state.control import Settings

    lines: list[str] = []
    for m in migrations:
        if m.error:
            lines.append(f"{m.name} error: {m.error}")
        readings = json.loads(m.gates_json or "[]")
        if m.throttled_seconds or readings:
            shown = ", ".join(map(_reading, readings)) or "none"
            lines.append(
                f"{m.name} throttled {m.throttled_seconds or 0:.2f} s in all; "
                f"last gate readings: {shown}"
            )
        settings = Settings.from_json(m.settings_json)
        if settings.items():
            lines.append(f"{m.name} settings: {settings}")
    return lines


def _reading(reading: dict[str, object]) -> str:
    value = reading.get("value")
    shown = "unknown" if value is None else f"{value:g}"
    return f"{reading['gate']} {shown} (limit {reading['limit']:g})"


def status_lines(migrations: list[MigrationState]) -> list[str]:
    """The status table as plain columns, then :func:`status_details`."""
    lines = plain_table(STATUS_HEADERS, status_rows(migrations), STATUS_NUMBERS)
    return lines + status_details(migrations)


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
