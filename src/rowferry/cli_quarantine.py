"""``rowferry quarantine``: list a migration's quarantined rows, or run them again."""

from __future__ import annotations

import json

import click

from . import quarantine
from .cli_common import AS_JSON, EXIT_STATUSES, TARGET_REQUIRED, library_errors
from .connections import connect, create_engine
from .loader import load


@click.command(epilog=EXIT_STATUSES)
@click.argument("name")
@TARGET_REQUIRED
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
    help="Source database URL, needed with --retry (env ROWFERRY_SOURCE).",
)
@AS_JSON
@library_errors
def quarantine_command(
    name: str, target: str, limit: int, retry_file: str | None, source: str | None, as_json: bool
) -> None:
    """List the quarantined rows of migration NAME: key, reason, attempts, source row.

    With --retry, run them again (after fixing the transform or the target): rows that succeed
    leave the quarantine, rows that fail again stay with their new reason.
    """
    if retry_file is not None:
        _retry(name, target, retry_file, source, as_json)
        return
    with connect(create_engine(target)) as conn:
        entries = quarantine.entries(conn, name, limit)
        total = quarantine.count(conn, name)
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], default=str, indent=2))
        return
    click.echo(f"{name}: {total} quarantined row(s)" + (f", first {limit}:" if total else ""))
    for e in entries:
        click.echo(f"- key {list(e.key)!r} ({e.attempts} attempt(s), {e.updated_at}): {e.reason}")


def _retry(name: str, target: str, retry_file: str, source: str | None, as_json: bool) -> None:
    from .requeue import retry_quarantined

    if source is None:
        raise click.UsageError("--retry needs --source URL (or ROWFERRY_SOURCE)")
    migration = load(retry_file, name)
    report = retry_quarantined(migration, source, target)
    if as_json:
        click.echo(json.dumps(report.__dict__))
        return
    click.echo(
        f"{name}: retried {report.retried} row(s): {report.succeeded} migrated "
        f"({report.written} target rows written), {report.still_bad} still failing, "
        f"{report.gone} no longer qualifying"
    )
