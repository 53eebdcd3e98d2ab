"""``rowferry verify`` finds every way a target can differ from its source, on every database."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.dialects import mysql, postgresql

import rowferry
from harness import reference
from rowferry import ConfigError, Migration, Target, documents
from rowferry.cli.main import main
from rowferry.cli.verify import EXIT_MISMATCH, detail_lines, report_lines
from rowferry.demo import order_history
from rowferry.demo.order_history import migration
from rowferry.state import quarantine
from rowferry.state import store as state
from rowferry.verify.check import VerifyReport, verify

DATETIME6 = (
    sa.DateTime()
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    .with_variant(postgresql.TIMESTAMP(precision=6), "postgresql")
)
#: a plain copy with a composite key; seq 3 does not qualify
COPY = Migration(name="copy", source="src", target="dst", where="seq <> :skip", params={"skip": 3})


def _migrated(url: str, orders: int = 150) -> list[int]:
    """Build the reference workload, run the order-history migration; return the qualifying
    order ids in key order."""
    reference.build(url, orders=orders)
    assert rowferry.run(migration, url).done
    return sorted(reference.snapshots(url))


def _execute(url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def _snapshot(url: str, order_id: int) -> Any:
    """The stored snapshot, parsed with exact decimals."""
    engine = sa.create_engine(url)
    snaps = sa.Table("order_snapshots", sa.MetaData(), autoload_with=engine)
    stmt = sa.select(sa.cast(snaps.c.snapshot, sa.Text)).where(snaps.c.order_id == order_id)
    with engine.connect() as conn:
        text = conn.execute(stmt).scalar_one()
    engine.dispose()
    return documents.loads(text)


def _set_snapshot(url: str, order_id: int, doc: Any) -> None:
    engine = sa.create_engine(url)
    snaps = sa.Table("order_snapshots", sa.MetaData(), autoload_with=engine)
    value: Any = sa.bindparam("doc", documents.dumps(doc), type_=sa.Text)
    if engine.dialect.name == "postgresql":
        value = sa.cast(value, postgresql.JSONB)
    with engine.begin() as conn:
        conn.execute(snaps.update().where(snaps.c.order_id == order_id).values(snapshot=value))
    engine.dispose()


def _quarantine(url: str, *order_ids: int) -> None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        state.ensure_table(conn)
        with conn.begin():
            entries = [((i,), "bad row", {"id": i}) for i in order_ids]
            quarantine.add(conn, migration.name, entries)
    engine.dispose()


def _copied(url: str, *, unique_target: bool = True) -> sa.Engine:
    """Tables ``src`` (key tenant, seq) and ``dst`` (wider decimals; without a primary key
    unless ``unique_target``), 4 x 15 rows copied by :data:`COPY`."""
    meta = sa.MetaData()

    def table(name: str, amount: sa.Numeric[Decimal], primary: bool) -> sa.Table:
        return sa.Table(
            name,
            meta,
            sa.Column("tenant", sa.Integer, primary_key=primary, autoincrement=False),
            sa.Column("seq", sa.Integer, primary_key=primary, autoincrement=False),
            sa.Column("label", sa.String(100)),
            sa.Column("amount", amount),
            sa.Column("at", DATETIME6),
            mysql_charset="utf8mb4",
        )

    src = table("src", sa.Numeric(10, 2), True)
    table("dst", sa.Numeric(14, 4), unique_target)
    engine = sa.create_engine(url)
    meta.create_all(engine)
    start = dt.datetime(2024, 5, 1, 10, 0, 0)
    rows = [
        {
            "tenant": t,
            "seq": s,
            "label": f"row {t}/{s} é王",
            "amount": Decimal(f"{t * s}.50"),
            "at": start + dt.timedelta(microseconds=t * 1000 + s),
        }
        for t in (1, 2, 3, 4)
        for s in range(1, 16)
    ]
    with engine.begin() as conn:
        conn.execute(src.insert(), rows)
    assert rowferry.run(COPY, engine, chunk_size=7).done
    return engine


def _findings(report: VerifyReport) -> dict[str, Any]:
    """What a report found, without how the key space was cut into ranges."""
    found = report.as_dict()
    kinds = ["missing", "duplicate", "extra", "stored_and_quarantined"]
    differing = sorted(k for m in found["range_mismatches"] for k in m["differing"]["keys"])
    return {
        **{kind: found[kind] for kind in kinds},
        "rows": (found["rows_compared"], found["rows_differing"], found["row_mismatches"]),
        "differing keys": differing,
        "ok": found["ok"],
    }


def test_a_migrated_target_verifies_with_a_sample_and_with_all_rows(db_url: str) -> None:
    ids = _migrated(db_url)
    every = verify(migration, db_url, all_rows=True)
    assert every.ok, report_lines(every)
    assert (every.qualifying, every.target_rows, every.rows_compared) == (len(ids),) * 3
    assert report_lines(every)[-1] == "OK: the target matches the source"
    sample = verify(migration, db_url, sample=25)
    assert sample.ok and sample.rows_compared == 25
    assert verify(migration, db_url, sample=0).rows_compared == 0


def test_a_plain_copy_with_a_composite_key_and_wider_decimals_verifies(db_url: str) -> None:
    _copied(db_url).dispose()
    report = verify(COPY, db_url, range_size=5)
    assert report.ok, report_lines(report)
    assert (report.mode, report.qualifying, report.target_rows) == ("copy", 56, 56)
    assert report.ranges == 12  # 56 keys in ranges of 5
    assert "range checksums: 12 compared, 0 differ" in report_lines(report)


def test_a_deleted_target_row_is_a_missing_key(db_url: str) -> None:
    ids = _migrated(db_url)
    _execute(db_url, "DELETE FROM order_snapshots WHERE order_id = :id", id=ids[9])
    report = verify(migration, db_url, sample=0)
    assert not report.ok
    assert (report.missing.count, report.missing.keys) == (1, [(ids[9],)])
    assert report.duplicate.count == report.extra.count == 0
    assert f"missing keys (qualifying, not stored, not quarantined): 1: [{ids[9]}]" in (
        report_lines(report)
    )


def test_a_row_stored_twice_is_a_duplicate_key(db_url: str) -> None:
    engine = _copied(db_url, unique_target=False)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO dst SELECT * FROM dst WHERE tenant = 2 AND seq = 5"),
        )
    engine.dispose()
    report = verify(COPY, db_url, range_size=10)
    assert (report.duplicate.count, report.duplicate.keys) == (1, [(2, 5)])
    assert report.missing.count == report.extra.count == 0
    assert report.ranges_differing == 1  # one more row in that range, equal to the first
    assert report.range_mismatches[0].differing.count == 0


def test_target_rows_for_keys_that_do_not_qualify_are_extra_keys(db_url: str) -> None:
    ids = _migrated(db_url)
    open_id = _execute(db_url, "SELECT MIN(id) FROM orders WHERE status = 'pending'")[0][0]
    for order_id in (0, open_id, 10**6):  # before the first key, between two, after the last
        _execute(
            db_url,
            "INSERT INTO order_snapshots (order_id, status, snapshot) VALUES (:id, 'x', '{}')",
            id=order_id,
        )
    report = verify(migration, db_url, sample=0, range_size=7)
    assert sorted(report.extra.keys) == [(0,), (open_id,), (10**6,)]
    assert report.extra.count == 3 and report.missing.count == 0
    assert report.target_rows == len(ids) + 3


def test_a_tampered_snapshot_is_found_with_all_rows(db_url: str) -> None:
    ids = _migrated(db_url)
    tampered = ids[-1]
    doc = _snapshot(db_url, tampered)
    doc["items"][0]["qty"] += 1
    _set_snapshot(db_url, tampered, doc)
    assert verify(migration, db_url, sample=1).ok  # the sample is the first key only
    report = verify(migration, db_url, all_rows=True)
    assert report.rows_differing == 1 and report.row_mismatches[0].key == (tampered,)
    assert report.row_mismatches[0].difference.startswith("snapshot.items[0].qty: expected ")
    assert report.missing.count == report.extra.count == 0


def test_a_tampered_column_in_a_plain_copy_names_its_range_and_key(db_url: str) -> None:
    engine = _copied(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE dst SET label = 'changed' WHERE tenant = 2 AND seq = 7"))
    engine.dispose()
    report = verify(COPY, db_url, range_size=10)
    assert not report.ok and report.ranges_differing == 1
    mismatch = report.range_mismatches[0]
    assert mismatch.differing.keys == [(2, 7)]
    assert mismatch.first <= (2, 7) <= mismatch.last
    assert mismatch.source_rows == mismatch.target_rows == 10
    assert mismatch.source_checksum != mismatch.target_checksum
    assert any("rows differ for 1: [2, 7]" in line for line in detail_lines(report))


def test_a_quarantined_key_is_not_missing_but_a_stored_one_is_reported(db_url: str) -> None:
    ids = _migrated(db_url)
    _execute(db_url, "DELETE FROM order_snapshots WHERE order_id = :id", id=ids[3])
    _quarantine(db_url, ids[3], ids[4])
    report = verify(migration, db_url, sample=0)
    assert report.missing.count == 0 and report.quarantined == 2
    assert report.stored_and_quarantined.keys == [(ids[4],)]
    assert not report.ok


def test_a_quarantined_row_of_a_plain_copy_leaves_its_range_s_checksum_equal(
    db_url: str,
) -> None:
    """The row the target rejected is accounted for by the quarantine, not by the checksum."""
    engine = _copied(db_url)
    with engine.connect() as conn:
        state.ensure_table(conn)
        with conn.begin():
            conn.execute(sa.text("DELETE FROM dst WHERE tenant = 2 AND seq = 7"))
            quarantine.add(conn, COPY.name, [((2, 7), "target: too long", {"seq": 7})])
    engine.dispose()
    report = verify(COPY, db_url, range_size=10)
    assert report.ok, report_lines(report)
    assert report.quarantined == 1 and report.ranges_differing == 0


def test_small_ranges_find_the_same_as_one_large_range(db_url: str) -> None:
    ids = _migrated(db_url, orders=200)
    _execute(db_url, "DELETE FROM order_snapshots WHERE order_id IN (:a, :b)", a=ids[0], b=ids[50])
    _execute(db_url, "UPDATE order_snapshots SET status = 'x' WHERE order_id = :id", id=ids[-1])
    _execute(
        db_url,
        "INSERT INTO order_snapshots (order_id, status, snapshot) VALUES (:id, 'x', '{}')",
        id=10**6,
    )
    _quarantine(db_url, ids[50], ids[7])
    for options in ({"all_rows": True}, {"sample": 40}):
        small = verify(migration, db_url, range_size=7, **options)
        large = verify(migration, db_url, **options)
        assert small.ranges > 10 and large.ranges == 1
        assert _findings(small) == _findings(large)
        assert small.missing.keys == [(ids[0],)] and small.extra.keys == [(10**6,)]


def test_small_ranges_find_the_same_in_a_plain_copy(db_url: str) -> None:
    engine = _copied(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE dst SET amount = 1 WHERE seq IN (1, 15)"))
        conn.execute(sa.text("DELETE FROM dst WHERE tenant = 3 AND seq = 9"))
    engine.dispose()
    small, large = verify(COPY, db_url, range_size=3), verify(COPY, db_url)
    assert _findings(small) == _findings(large)
    assert len(_findings(small)["differing keys"]) == 8 and small.missing.keys == [(3, 9)]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_command_exits_0_when_the_target_matches_and_5_when_not(db_url: str) -> None:
    ids = _migrated(db_url, orders=100)
    path = order_history.__file__
    same = invoke("verify", path, "--source", db_url, "--all")
    assert same.exit_code == 0, same.output
    assert "transform re-run on" in same.output and "OK: the target matches" in same.output
    _execute(db_url, "DELETE FROM order_snapshots WHERE order_id = :id", id=ids[1])
    differs = invoke("verify", path, "--source", db_url, "--sample", "5", "--range-size", "9")
    assert differs.exit_code == EXIT_MISMATCH == 5
    assert f"1: [{ids[1]}]" in differs.output and "MISMATCH" in differs.output
    as_json = invoke("verify", path, "--source", db_url, "--json")
    assert as_json.exit_code == EXIT_MISMATCH
    found = json.loads(as_json.output)
    assert found["ok"] is False and found["missing"] == {"count": 1, "keys": [[ids[1]]]}
    both = invoke("verify", path, "--source", db_url, "--sample", "5", "--all")
    assert both.exit_code == 2 and "not both" in both.output


@pytest.mark.parametrize("dialect_name", ["sqlite"])
def test_a_transform_target_without_source_key_columns_is_refused(db_url: str) -> None:
    reference.build(db_url, orders=20)
    unmatched = Migration(
        name="unmatched", source="orders", transform=lambda o, r: None, target="order_snapshots"
    )
    with pytest.raises(ConfigError, match=r"source_key=\[\.\.\.\]"):
        verify(unmatched, db_url)
    matched = Migration(
        name="matched",
        source="orders",
        transform=lambda o, r: None,
        target=Target("order_snapshots", source_key="order_id"),
    )
    assert verify(matched, db_url).ok


def test_a_copy_into_a_table_of_the_same_name_in_another_database_counts_each_side(
    db_url: str, dialect_name: str, make_db: Callable[[str], str]
) -> None:
    """Source and target tables of one name and one definition, in two databases: each is
    counted and read in its own database."""
    other = make_db(dialect_name)
    for url in (db_url, other):
        _execute(url, "CREATE TABLE items (id INTEGER NOT NULL PRIMARY KEY, label VARCHAR(20))")
    for i in range(1, 11):
        _execute(db_url, "INSERT INTO items (id, label) VALUES (:i, :label)", i=i, label=f"#{i}")
    copy = Migration(name="items", source="items", target="items")
    assert rowferry.run(copy, db_url, other).done
    _execute(other, "DELETE FROM items WHERE id = 4")
    report = verify(copy, db_url, other)
    assert (report.qualifying, report.target_rows) == (10, 9)
    assert (report.missing.count, report.missing.keys) == (1, [(4,)])
