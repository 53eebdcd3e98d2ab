"""Running quarantined rows again after a fix: ``rowferry quarantine NAME --retry FILE``.

The quarantined keys are read back in batches (with the migration's filter and relations),
transformed and written as a chunk would be. In each batch's transaction, rows that succeed
leave the quarantine, rows that fail again stay with their new reason and one more attempt,
and keys that no longer exist or no longer pass the filter leave it too (nothing to migrate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from rowferry.chunks import read as reading
from rowferry.chunks.python_path import PythonWay
from rowferry.chunks.write import Writer
from rowferry.cursor import Key
from rowferry.dialects.connect import Bind, connect_both
from rowferry.dialects.driver_errors import DriverErrors, boundary
from rowferry.errors import AlreadyRunning
from rowferry.migration import transform
from rowferry.migration.spec import Migration
from rowferry.schema import resolve
from rowferry.state import quarantine
from rowferry.state import store as state


@dataclass
class RetryReport:
    migration: str
    retried: int = 0
    succeeded: int = 0
    still_bad: int = 0
    gone: int = 0
    written: int = 0


def retry_quarantined(
    migration: Migration, source: Bind, target: Bind | None = None, *, batch: int = 500
) -> RetryReport:
    """Run every quarantined row of ``migration`` again; see the module docstring."""
    report = RetryReport(migration.name)
    context = f"retry of migration {migration.name!r}'s quarantined rows"
    with connect_both(source, target) as (src, dst), boundary(src, dst, context) as errors:
        processor = _processor(migration, src, dst, errors)
        _refuse_if_running(dst, migration.name)
        keys = [entry.key for entry in quarantine.entries(dst, migration.name)]
        dst.rollback()
        for start in range(0, len(keys), batch):
            _retry_batch(processor, keys[start : start + batch], report)
    return report


def _processor(
    migration: Migration, src: sa.Connection, dst: sa.Connection, errors: DriverErrors
) -> PythonWay:
    source = resolve.resolve_source(src, migration)
    target = resolve.resolve_target(dst, migration, [c.name for c in source.key])
    source_dialect, target_dialect = errors.dialects
    bound, reader = reading.for_migration(migration, source, source_dialect)
    writer = Writer(target, target_dialect)
    return PythonWay(bound, src, dst, reader, writer, errors.is_transient)


def _refuse_if_running(conn: sa.Connection, name: str) -> None:
    if not state.table_exists(conn):
        return
    current = state.read(conn, name)
    conn.rollback()
    if current is not None and current.display_status == "running":
        until = current.lease_until.isoformat() if current.lease_until else "?"
        raise AlreadyRunning(
            f"migration {name!r} is running (owner {current.owner}, lease until {until} UTC); "
            "retry its quarantined rows when it has stopped",
            owner=current.owner or "?",
            until=until,
        )


def _retry_batch(processor: PythonWay, keys: Sequence[Key], report: RetryReport) -> None:
    src, dst, name = processor.src, processor.dst, processor.migration.name
    chunk = processor.reader.read_keys(src, keys)
    if src is not dst:
        src.rollback()
    result = transform.apply(processor.migration, processor.key_names, chunk.rows, chunk.related)
    written = processor.write_rows(result, all_bad_fails=False)
    found = set(transform.keys(chunk.rows, processor.key_names))
    failed = {f.key for f in result.failures}
    cleared = [k for k in keys if k not in failed]
    quarantine.remove(dst, name, cleared)
    quarantine.add(dst, name, [(f.key, f.reason, f.source) for f in result.failures])
    state.adjust(dst, name, written=written, quarantined=-len(cleared))
    dst.commit()
    report.retried += len(keys)
    report.gone += len([k for k in keys if k not in found])
    report.succeeded += len(found - failed)
    report.still_bad += len(failed)
    report.written += written
