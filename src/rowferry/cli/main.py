"""The ``rowferry`` command: each subcommand opens the library, calls one function, and turns
library errors into a message and a documented exit status.

Only click is imported up front; each command imports the library modules it uses when it
runs, so that ``rowferry --version`` and ``--help`` start at once and ``rowferry run`` loads
neither rich (off a terminal) nor the modules of other commands.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from rowferry import __version__, defaults
from rowferry.cli.common import (
    AS_JSON,
    CHUNK_SIZE,
    EXIT_STATUSES,
    NAME,
    PUSHDOWN,
    SOURCE,
    STATE_SOURCE,
    STATE_TARGET,
    TARGET,
    Commands,
    Duration,
    Stopped,
    library_errors,
    plural,
    require_known,
    state_url,
    throttle_options,
)
from rowferry.cli.control import cancel, pause, resume, set_command
from rowferry.cli.lambda_commands import lambda_group
from rowferry.cli.quarantine import quarantine_command
from rowferry.cli.verify import verify as verify_command

if TYPE_CHECKING:
    from rowferry.engine.run import ChunkDone, RunResult
    from rowferry.engine.sizing import ChunkSize
    from rowferry.engine.throttle import Throttle, ThrottleOptions
    from rowferry.migration.spec import Migration

#: the exit status of each way a trip ends
_EXITS = {
    "done": defaults.EXIT_DONE,
    "caught_up": defaults.EXIT_DONE,
    "stopped": defaults.EXIT_STOPPED,
    "paused": defaults.EXIT_PAUSED,
    "cancelled": defaults.EXIT_CANCELLED,
}


@click.group(cls=Commands, epilog=EXIT_STATUSES)
@click.version_option(__version__, prog_name="rowferry")
@click.option("-v", "--verbose", count=True, help="Log to stderr: -v trips, -vv every chunk.")
def main(verbose: int) -> None:
    """Move rows, with their related rows, between SQL databases in bounded, resumable trips.

    Every chunk's writes commit together with its checkpoint: a run can be killed at any
    instant and the next one resumes exactly where the last commit left off.

    Errors are printed once, on stderr, as "Error: ..." and the exit status says what kind
    they are (below). With --json an error is instead one JSON object on stdout, like the
    command's own output: {"status": "refused", "exit_status": 2, "error": "..."} ("status"
    is "failed", "refused", "stopped" or "busy"), with the same exit status.
    """
    if verbose:
        level = logging.DEBUG if verbose > 1 else logging.INFO
        logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")


@main.command("run", epilog=EXIT_STATUSES)
@click.argument("migration_file")
@SOURCE
@TARGET
@click.option("--time-budget", type=Duration(), help="Stop before a chunk that would overrun it.")
@CHUNK_SIZE
@PUSHDOWN
@click.option("--max-chunks", type=click.IntRange(min=1), help="Stop after this many chunks.")
@click.option(
    "--max-bad-rows",
    type=click.IntRange(min=0),
    default=defaults.MAX_BAD_ROWS,
    show_default=True,
    help="Fail the run when it quarantines more rows than this.",
)
@throttle_options
@NAME
@AS_JSON
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@library_errors
def run_command(
    migration_file: str,
    source: str,
    target: str | None,
    time_budget: float | None,
    chunk_size: ChunkSize,
    pushdown: bool | None,
    max_chunks: int | None,
    max_bad_rows: int,
    name: str | None,
    as_json: bool,
    quiet: bool,
    throttle: ThrottleOptions,
) -> None:
    """Run one trip of the migration in MIGRATION_FILE (a Python file defining a Migration).

    The trip runs chunks until the migration is done or the budget would be overrun, then
    says which. Run it again (by hand, cron, a scheduler) until it exits with 0. A first
    Ctrl-C (or SIGTERM) stops it after the current chunk, a second one at once (the open
    chunk is rolled back); either way it exits with 3.

    It yields to the database when told to: before each chunk it waits while a --replica lags
    more than --max-replica-lag, while the source runs more than --max-threads-running
    statements, its history list is longer than --max-history-length, or a --check query
    returns more than its limit; it stops (exit status 3, "throttled: ...") when the wait
    would leave no time for the chunk, or after 60 s without a --time-budget. After each
    chunk it pauses to keep to --max-load and for --sleep, within the budget. 'rowferry set'
    changes these limits while it runs; 'rowferry pause' and 'rowferry cancel' stop it
    before its next chunk.
    """
    from rowferry.engine.run import Budget, run
    from rowferry.engine.stops import SignalStop
    from rowferry.migration.file import load

    migration = _with_pushdown(load(migration_file, name), pushdown)
    budget = Budget(
        seconds=time_budget,
        max_chunks=max_chunks,
        max_bad_rows=max_bad_rows,
        throttle=_throttle(source, throttle),
    )
    signals = SignalStop()
    try:
        with signals.installed(), _progress(quiet or as_json) as on_chunk:
            result = run(
                migration,
                source,
                target,
                budget=budget,
                chunk_size=chunk_size,
                stop_when=[signals],
                on_chunk=on_chunk,
            )
    except KeyboardInterrupt as exc:
        raise Stopped(
            f"{migration.name}: {exc or 'interrupted'}; the open chunk was rolled back, "
            "every chunk before it is kept: run again to continue"
        ) from None
    _print_result(result, as_json)
    sys.exit(_EXITS[result.status])


def _throttle(source: str, options: ThrottleOptions) -> Throttle | None:
    """The throttle the options ask for (None: none)."""
    from rowferry.dialects.connect import create_engine

    return options.build(source, create_engine)


def _with_pushdown(migration: Migration, pushdown: bool | None) -> Migration:
    import dataclasses

    return migration if pushdown is None else dataclasses.replace(migration, pushdown=pushdown)


def _print_result(result: RunResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.as_dict(), default=str))
        return
    total = "?" if result.rows_total is None else f"{result.rows_total:,}"
    verdict = {
        "done": "done",
        "caught_up": "caught up, run again to capture later changes",
        "stopped": "stopped, run again to continue",
        "paused": "paused",
        "cancelled": "cancelled",
    }[result.status]
    extra = ""
    if result.rows_quarantined:
        extra += f", {result.rows_quarantined:,} quarantined (see 'rowferry quarantine')"
    if result.retries:
        extra += f", {plural(result.retries, 'transient error')} retried"
    click.echo(
        f"{result.migration}: {verdict} ({result.reason}). This trip: "
        f"{plural(result.chunks, 'chunk')}, {result.rows_read:,} rows read, "
        f"{result.rows_written:,} written{extra} in {result.seconds:.2f} s. "
        f"In all: {result.rows_done:,} of {total} rows."
    )
    if result.throttled_seconds or result.gate_readings:
        readings = ", ".join(map(str, result.gate_readings)) or "none"
        click.echo(
            f"Throttled {result.throttled_seconds:.2f} s (waiting for gates "
            f"{result.gate_wait_seconds:.2f} s, pausing {result.pause_seconds:.2f} s); "
            f"last readings: {readings}."
        )


@contextmanager
def _progress(hidden: bool) -> Iterator[Callable[[ChunkDone], None] | None]:
    """A rich progress bar with ETA on a terminal; nothing otherwise."""
    if hidden or not sys.stderr.isatty():
        yield None
        return
    from rowferry.cli.render import rows_progress

    with rows_progress("{task.description}", "rows") as bar:
        task = bar.add_task("migrating", total=None)

        def on_chunk(event: ChunkDone) -> None:
            bar.update(
                task, description=event.migration, total=event.rows_total, completed=event.rows_done
            )

        yield on_chunk


@main.command(epilog=EXIT_STATUSES)
@STATE_TARGET
@STATE_SOURCE
@AS_JSON
@library_errors
def status(target: str | None, source: str | None, as_json: bool) -> None:
    """Show every migration recorded in the target database and where it stands.

    States: running, interrupted (its run is gone; run again), stopped (by a budget, a chunk
    limit, a signal or the throttle; run again), done, caught_up (a migration that follows
    its source; run again for later changes), failed, new, paused ('rowferry resume') and
    cancelled ('rowferry reset'). Rows/s is the rate of the chunks measured
    last and ETA the time the rows left take at that rate, not counting pauses, throttling
    or the time between trips.

    On a terminal, a table; otherwise (a pipe, a file) plain columns separated by spaces,
    counts aligned right. Then, per migration, a line with its error, one with the time it
    was throttled and the last reading of each gate, and one with its settings ('rowferry
    set'), for those that have them.
    """
    from rowferry.dialects.connect import connect, create_engine
    from rowferry.state import store as state

    with connect(create_engine(state_url(target, source))) as conn:
        migrations = state.read_all(conn) if state.table_exists(conn) else []
    if as_json:
        rows = [m.as_dict() | {"state": m.display_status} for m in migrations]
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    if not migrations:
        click.echo("no migrations recorded in this database yet")
        return
    if sys.stdout.isatty():
        from rowferry.cli.render import print_status

        print_status(migrations)
        return
    from rowferry.cli.plain import status_lines

    for line in status_lines(migrations):
        click.echo(line)


@main.command(epilog=EXIT_STATUSES)
@click.argument("migration_file")
@SOURCE
@TARGET
@CHUNK_SIZE
@PUSHDOWN
@NAME
@AS_JSON
@library_errors
def plan(
    migration_file: str,
    source: str,
    target: str | None,
    chunk_size: ChunkSize,
    pushdown: bool | None,
    name: str | None,
    as_json: bool,
) -> None:
    """Dry run: count the rows, show the SQL one chunk sends and the database's EXPLAIN of it.

    Writes nothing. Warns when a chunk query would scan a whole table.
    """
    from rowferry.migration.file import load
    from rowferry.plan import plan as make_plan

    migration = _with_pushdown(load(migration_file, name), pushdown)
    report = make_plan(migration, source, target, chunk_size=chunk_size)
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str, indent=2))
        return
    from rowferry.cli.render import print_plan

    print_plan(report)


@main.command(epilog=EXIT_STATUSES)
@click.argument("name")
@STATE_TARGET
@STATE_SOURCE
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@library_errors
def reset(name: str, target: str | None, source: str | None, yes: bool) -> None:
    """Forget the progress of migration NAME, so that its next run starts from the beginning.

    Rows already written to the target stay; delete them yourself if you want them written again
    (or declare on_conflict='skip' or 'update' on the target). A NAME the database does not know
    is refused (exit status 2) with the names it knows.
    """
    from rowferry.dialects.connect import connect, create_engine
    from rowferry.state import store as state

    with connect(create_engine(state_url(target, source))) as conn:
        known = state.read_all(conn) if state.table_exists(conn) else []
        conn.rollback()
        require_known(name, known)
        if not yes and not click.confirm(f"Forget all progress of migration {name!r}?"):
            click.echo(f"{name}: nothing changed")
            return
        state.reset(conn, name)
    click.echo(f"{name}: progress forgotten")


@main.command(epilog=EXIT_STATUSES)
@click.option(
    "--orders",
    type=click.IntRange(min=1),
    default=2700,
    show_default=True,
    help="How many orders to generate.",
)
@click.option(
    "--url",
    metavar="URL",
    help="Database to build it in (default: a local SQLite file, "
    "rowferry-demo.sqlite). Its reference tables are dropped and created anew.",
)
@click.option(
    "--trip-budget",
    type=Duration(),
    default="0.25s",
    show_default=True,
    help="Time budget of each trip.",
)
@click.option(
    "--trip-chunks",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Each trip also stops after this many chunks, so that a fast machine shows several "
    "trips too.",
)
@click.option("--chunk-size", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@library_errors
def demo(
    orders: int, url: str | None, trip_budget: float, trip_chunks: int, chunk_size: int, seed: int
) -> None:
    """Build the pharmacy workload, freeze finished orders into snapshots in time-boxed trips,
    check the result."""
    from rowferry.cli.render import demo_printer
    from rowferry.demo.runner import DEFAULT_URL, run_demo

    printer = demo_printer()
    report = run_demo(
        url or DEFAULT_URL,
        orders,
        seed=seed,
        trip_seconds=trip_budget,
        trip_chunks=trip_chunks,
        chunk_size=chunk_size,
        on_built=printer.built,
        on_trip=printer.trip,
        on_chunk=printer.chunk,
    )
    printer.finish(report)
    if not report.ok:
        sys.exit(defaults.EXIT_FAILED)


main.add_command(pause, name="pause")
main.add_command(resume, name="resume")
main.add_command(cancel, name="cancel")
main.add_command(set_command, name="set")
main.add_command(quarantine_command, name="quarantine")
main.add_command(verify_command, name="verify")
main.add_command(lambda_group, name="lambda")
