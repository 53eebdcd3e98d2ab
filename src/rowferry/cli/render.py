"""Rendering for people: the status table, the plan and the demo's trips (rich, imported on
the CLI path only)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from rowferry.cli.common import plural
from rowferry.cli.plain import STATUS_HEADERS, STATUS_NUMBERS, status_details, status_rows

if TYPE_CHECKING:
    from rowferry.demo.runner import DemoReport
    from rowferry.engine.run import ChunkDone, RunResult
    from rowferry.plan import PlanReport
    from rowferry.state.store import MigrationState


class RowsColumn(ProgressColumn):
    """``1,200/2,700 rows``, or ``1,200 rows`` while the total is not known yet."""

    def __init__(self, unit: str = "") -> None:
        super().__init__()
        self.unit = f" {unit}" if unit else ""

    def render(self, task: Task) -> Text:
        done = f"{task.completed:,.0f}"
        if task.total is not None:
            done += f"/{task.total:,.0f}"
        return Text(done + self.unit)


def rows_progress(description: str, unit: str = "", console: Console | None = None) -> Progress:
    """The progress bar of a run (description, bar, rows done of the total, time left),
    cleared when it ends."""
    columns = (TextColumn(description), BarColumn(), RowsColumn(unit), TimeRemainingColumn())
    return Progress(*columns, console=console, transient=True)


def print_status(migrations: list[MigrationState]) -> None:
    """The status table drawn for a terminal (counts aligned right), then each migration's
    details (error, throttling, settings); :func:`rowferry.cli.plain.status_lines` is the same
    as plain columns."""
    table = Table(box=box.SIMPLE_HEAD)
    for number, header in enumerate(STATUS_HEADERS):
        table.add_column(header, justify="right" if number in STATUS_NUMBERS else "left")
    for row in status_rows(migrations):
        table.add_row(*row)
    console = Console(highlight=False)
    console.print(table)
    for line in status_details(migrations):
        console.print(line, markup=False)


def print_plan(report: PlanReport) -> None:
    out = Console(highlight=False, soft_wrap=True)
    out.print(
        f"[bold]{report.migration}[/]: {report.source_table} -> {report.target_table}, "
        f"key ({', '.join(report.key)}), source {report.source}"
    )
    out.print(
        f"qualifying rows: {report.qualifying_rows:,}; done: {report.rows_done:,}; "
        f"left: {report.rows_left:,} = {plural(report.chunks_left, 'chunk')} of "
        f"{report.chunk_size:,}"
    )
    out.print(f"pushdown: {report.pushdown}", markup=False)
    if report.follow != "off":
        out.print(f"follow: {report.follow}", markup=False)
    out.print("\n[bold]One chunk sends:[/]")
    for number, query in enumerate(report.queries, 1):
        out.print(f"\n{number}. {query.title}", style="bold")
        out.print(query.sql, markup=False)
        out.print("EXPLAIN:", style="dim")
        for line in query.explain:
            out.print("  " + line, markup=False, style="dim")
    out.print(
        f"\n{len(report.queries) + 1}. write, in the same transaction as the checkpoint",
        style="bold",
    )
    out.print(_without_repeat(report), markup=False)
    out.print(
        f"{len(report.queries) + 2}. UPDATE rowferry_state SET cursor_json = ..., chunks = "
        "chunks + 1 ... WHERE name = ... AND token = ... AND chunks = ...; COMMIT",
        markup=False,
    )
    for warning in report.warnings:
        out.print(f"\n[bold yellow]warning:[/] {warning}")


def _without_repeat(report: PlanReport) -> str:
    """The write, with the SELECT shown just above it (a pushed-down chunk's INSERT ...
    SELECT) named instead of printed a second time."""
    write = report.write_sql or "-"
    if report.queries and report.queries[-1].sql in write:
        shown = f"<the SELECT of statement {len(report.queries)}>"
        return write.replace(report.queries[-1].sql, shown)
    return write


class DemoPrinter:
    """Prints one line per trip above a progress bar over the whole demo."""

    def __init__(self) -> None:
        self.console = Console(highlight=False, soft_wrap=True)
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        if sys.stderr.isatty():
            self.progress = rows_progress("snapshots", console=Console(stderr=True))
        self.trips = 0

    def chunk(self, event: ChunkDone) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("demo", total=event.rows_total)
        self.progress.update(self.task, completed=event.rows_done, total=event.rows_total)

    def trip(self, result: RunResult) -> None:
        self.trips += 1
        ending = "done" if result.done else f"stopped: {result.reason}"
        line = (
            f"trip {self.trips}: {plural(result.chunks, 'chunk')}, "
            f"{plural(result.rows_written, 'snapshot')} "
            f"in {result.seconds:.2f} s ({ending})"
        )
        self._console().print(line)

    def _console(self) -> Console:
        if self.progress is not None and self.task is not None:
            return self.progress.console
        return self.console

    def built(self, report: DemoReport) -> None:
        self.console.print(
            f"built {report.orders:,} orders ({report.qualifying:,} finished) in "
            f"{report.url} in {report.build_seconds:.2f} s"
        )

    def finish(self, report: DemoReport) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.console.print(
            f"[bold]wrote {plural(report.snapshots, 'snapshot')} in "
            f"{report.migrate_seconds:.2f} s[/] ({plural(len(report.trips), 'trip')})"
        )
        if report.verify is not None:
            from rowferry.cli.verify import detail_lines, summary_lines

            self.console.print(f"verify --all ({report.verify_seconds:.2f} s):")
            for line in summary_lines(report.verify) + detail_lines(report.verify):
                self.console.print(f"  {line}", markup=False)
        for problem in report.problems:
            self.console.print(f"[bold red]check failed:[/] {escape(problem)}")
        if report.ok:
            self.console.print(
                "check: every finished order has exactly one snapshot, "
                "equal to what the transform gives"
            )


def demo_printer() -> DemoPrinter:
    return DemoPrinter()
