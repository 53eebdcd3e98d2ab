"""``rowferry verify``: compare a migration's target with its source (see
:mod:`rowferry.verify.check`), and the report as text for people (also printed at the end of
``rowferry demo``).

Registered on the ``rowferry`` group at the end of :mod:`rowferry.cli.main`; the shared options
come from :mod:`rowferry.cli.common`.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from rowferry import defaults
from rowferry.cli.common import AS_JSON, EXIT_STATUSES, NAME, SOURCE, TARGET, library_errors, plural

if TYPE_CHECKING:
    from rowferry.verify.report import Findings, Key, RangeMismatch, VerifyReport

EXIT_MISMATCH = defaults.EXIT_MISMATCH
SAMPLE = defaults.VERIFY_SAMPLE
RANGE_SIZE = defaults.VERIFY_RANGE_SIZE


@click.command(epilog=EXIT_STATUSES)
@click.argument("migration_file")
@SOURCE
@TARGET
@NAME
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    metavar="N",
    help=f"Transform migrations: re-run the transform on N rows spread evenly over the keys "
    f"(default: {SAMPLE:,}).",
)
@click.option(
    "--all",
    "all_rows",
    is_flag=True,
    help="Transform migrations: re-run the transform on every qualifying row.",
)
@click.option(
    "--range-size",
    type=click.IntRange(min=1),
    default=RANGE_SIZE,
    show_default=True,
    help="Source keys per compared range (bounds the memory used).",
)
@AS_JSON
@library_errors
def verify(
    migration_file: str,
    source: str,
    target: str | None,
    name: str | None,
    sample: int | None,
    all_rows: bool,
    range_size: int,
    as_json: bool,
) -> None:
    """Compare the target of the migration in MIGRATION_FILE with its source.

    Does not trust the state table: finds qualifying keys missing from the target (and not
    quarantined), keys stored twice or not qualifying, and keys both stored and quarantined.
    For a plain copy it compares a checksum of the copied columns per range of keys; for a
    transform migration it re-runs the transform on a sample (or --all) and compares with the
    stored rows. Writes nothing. Exits with 5 when anything differs.
    """
    from rowferry.migration.file import load
    from rowferry.verify.check import verify as verify_migration

    if sample is not None and all_rows:
        raise click.UsageError("give --sample N or --all, not both")
    report = verify_migration(
        load(migration_file, name),
        source,
        target,
        sample=SAMPLE if sample is None else sample,
        all_rows=all_rows,
        range_size=range_size,
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        for line in report_lines(report):
            click.echo(line)
    sys.exit(defaults.EXIT_DONE if report.ok else EXIT_MISMATCH)


def report_lines(report: VerifyReport) -> list[str]:
    """The summary, the mismatching ranges and rows, and the verdict."""
    verdict = "OK: the target matches the source" if report.ok else "MISMATCH: see above"
    return [*summary_lines(report), *detail_lines(report), verdict]


def summary_lines(report: VerifyReport) -> list[str]:
    """One line on what was compared, then one line per check with its counts."""
    r = report
    lines = [
        f"{r.migration}: {r.source_table} ({', '.join(r.key)}) -> {r.target_table} "
        f"({', '.join(r.source_key)}): {r.qualifying:,} qualifying rows, {r.target_rows:,} "
        f"target rows, {r.quarantined:,} quarantined; {plural(r.ranges, 'range')} of up to "
        f"{r.range_size:,} keys",
        f"missing keys (qualifying, not stored, not quarantined): {_listed(r.missing)}",
        f"duplicate keys (stored more than once): {_listed(r.duplicate)}",
        f"extra keys (stored, not qualifying): {_listed(r.extra)}",
        f"keys both stored and quarantined: {_listed(r.stored_and_quarantined)}",
    ]
    if r.mode == "copy":
        lines.append(f"range checksums: {r.ranges:,} compared, {r.ranges_differing:,} differ")
    else:
        lines.append(
            f"transform re-run on {r.rows_compared:,} rows ({r.sample}): "
            f"{r.rows_differing:,} differ"
        )
    return lines


def detail_lines(report: VerifyReport) -> list[str]:
    """The mismatching ranges and rows, one line each."""
    lines = [_range_line(m) for m in report.range_mismatches]
    if report.ranges_differing > len(report.range_mismatches):
        lines.append(f"... and {report.ranges_differing - len(report.range_mismatches):,} more")
    lines += [f"key {_show(m.key)}: {m.difference}" for m in report.row_mismatches]
    if report.rows_differing > len(report.row_mismatches):
        lines.append(f"... and {report.rows_differing - len(report.row_mismatches):,} more rows")
    return lines


def _show(key: Key) -> str:
    return json.dumps(list(key), ensure_ascii=False, default=str)


def _listed(found: Findings) -> str:
    if not found.count:
        return "0"
    more = ", ..." if found.count > len(found.keys) else ""
    return f"{found.count:,}: " + ", ".join(_show(k) for k in found.keys) + more


def _range_line(mismatch: RangeMismatch) -> str:
    rows = mismatch.differing
    differing = f"rows differ for {_listed(rows)}" if rows.count else "no common key differs"
    return (
        f"range {_show(mismatch.first)}..{_show(mismatch.last)}: {mismatch.source_rows:,} "
        f"source rows, {mismatch.target_rows:,} target rows, checksum "
        f"{mismatch.source_checksum[:12]} != {mismatch.target_checksum[:12]}; {differing}"
    )
