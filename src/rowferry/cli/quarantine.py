"""``rowferry quarantine``: list a migration's quarantined rows, or run them again."""

from __future__ import annotations

import json
import sys

import click

from rowferry import defaults
from rowferry.cli.common import (
    AS_JSON,
    EXIT_STATUSES,
    STATE_TARGET,
    library_errors,
    plural,
    require_known,
    state_url,
)


@click.command(epilog=EXIT_STATUSES)
@click.argument("name")
@STATE_TARGET
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many entries to list.",
)
@click.option(
    "--retry",
    "retry_file",
    metavar="MIGRATION_FILE",
    help="Run the quarantined rows again with the migration in this file.",
)
@click.option(
    "--source",
    envvar="ROWFERRY_SOURCE",
    metavar="URL",
    help="Source database URL (env ROWFERRY_SOURCE), needed with --retry; also the state's "
    "database when there is no --target.",
)
@AS_JSON
@library_errors
def quarantine_command(
    name: str,
    target: str | None,
    limit: int,
    retry_file: str | None,
    source: str | None,
    as_json: bool,
) -> None:
    """List the quarantined rows of migration NAME: key, reason, attempts, source row.

    With --retry, run them again (after fixing the transform or the target): rows that succeed
    leave the quarantine, rows that fail again stay with their new reason and one more attempt.
    The retry exits with 0 when no row is left in the quarantine, 1 when some still fail.
    A NAME the database does not know is refused (exit status 2) with the names it knows.
    """
    from rowferry.dialects.connect import connect, create_engine
    from rowferry.state import quarantine
    from rowferry.state import store as state

    with connect(create_engine(state_url(target, source))) as conn:
        known = state.read_all(conn) if state.table_exists(conn) else []
        total = quarantine.count(conn, name)
        if not total:
            require_known(name, known)
        entries = quarantine.entries(conn, name, limit)
    if retry_file is not None:
        _retry(name, target, retry_file, source, as_json)
        return
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], default=str, indent=2))
        return
    shown = f", first {limit}:" if total else ""
    click.echo(f"{name}: {plural(total, 'quarantined row')}{shown}")
    for e in entries:
        attempts = plural(e.attempts, "attempt")
        click.echo(f"- key {list(e.key)!r} ({attempts}, {e.updated_at}): {e.reason}")


def _retry(
    name: str, target: str | None, retry_file: str, source: str | None, as_json: bool
) -> None:
    from rowferry.migration.file import load
    from rowferry.requeue import retry_quarantined

    if source is None:
        raise click.UsageError("--retry needs --source URL (or ROWFERRY_SOURCE)")
    migration = load(retry_file, name)
    report = retry_quarantined(migration, source, target)
    if as_json:
        click.echo(json.dumps(report.__dict__))
    else:
        click.echo(
            f"{name}: retried {plural(report.retried, 'row')}: {report.succeeded:,} migrated "
            f"({report.written:,} target rows written), {report.still_bad:,} still failing, "
            f"{report.gone:,} no longer qualifying"
        )
        if report.still_bad:
            click.echo(
                f"the rows still failing stay quarantined with their new reason: see "
                f"'rowferry quarantine {name}', fix the cause, then retry again",
                err=True,
            )
    sys.exit(defaults.EXIT_FAILED if report.still_bad else defaults.EXIT_DONE)
