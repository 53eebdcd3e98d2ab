"""Ordinary inputs that once lost, duplicated or changed rows: each one is exact or refused.

The target is read back with the drivers' own cursors (``exec_driver_sql``), not through
rowferry's readers or SQLAlchemy's types.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from typing import Any

import pytest
import sqlalchemy as sa

import rowferry
from rowferry import ConfigError, Migration, SchemaError
from rowferry.verify.check import verify


def _raw(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql).all()]
    finally:
        engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _states(url: str, rows: int) -> None:
    """``src(id, state)`` with ``rows`` rows, a third of them 'done'; ``dst`` with no key."""
    values = ", ".join(f"({i}, '{'done' if i % 3 == 0 else 'open'}')" for i in range(1, rows + 1))
    _execute(
        url,
        "CREATE TABLE src (id INTEGER NOT NULL PRIMARY KEY, state VARCHAR(10) NOT NULL)",
        "CREATE TABLE dst (id INTEGER NOT NULL, state VARCHAR(10) NOT NULL)",
        f"INSERT INTO src (id, state) VALUES {values}",
    )


@pytest.mark.parametrize("pushdown", [False, True], ids=["python", "pushdown"])
def test_a_filter_with_or_takes_every_qualifying_row_once(db_url: str, pushdown: bool) -> None:
    _states(db_url, 30)
    where = "id = 1 OR state = 'done'"
    migration = Migration("or", source="src", target="dst", where=where, pushdown=pushdown)
    result = rowferry.run(migration, db_url, chunk_size=5)
    assert result.done
    assert result.rows_done == result.rows_total == 11
    got = _raw(db_url, "SELECT id FROM dst ORDER BY id")
    assert [r[0] for r in got] == [1, *range(3, 31, 3)]


def test_a_filter_ending_in_a_line_comment_is_one_condition(db_url: str) -> None:
    _states(db_url, 12)
    where = "state = 'done' -- the finished ones"
    result = rowferry.run(Migration("c", source="src", target="dst", where=where), db_url)
    assert result.done
    assert [r[0] for r in _raw(db_url, "SELECT id FROM dst ORDER BY id")] == [3, 6, 9, 12]


def test_a_subquery_may_order_and_limit_its_own_rows(db_url: str) -> None:
    _states(db_url, 12)
    where = "id IN (SELECT id FROM (SELECT id FROM src ORDER BY id DESC LIMIT 4) AS last)"
    result = rowferry.run(Migration("s", source="src", target="dst", where=where), db_url)
    assert result.done
    assert [r[0] for r in _raw(db_url, "SELECT id FROM dst ORDER BY id")] == [9, 10, 11, 12]


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("state = 'done' ORDER BY id", "ORDER BY"),
        ("state = 'done' LIMIT 10", "LIMIT"),
        ("state = 'done' order  by id limit 3", "ORDER BY"),
        ("state = 'done' GROUP BY id", "GROUP BY"),
        ("state = 'done'; DELETE FROM src", "';'"),
        ("state = 'done' UNION SELECT 1", "UNION"),
    ],
)
def test_a_filter_that_is_more_than_a_condition_is_refused_before_anything_runs(
    where: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        Migration("f", source="src", target="dst", where=where)
    assert "'f'" in str(caught.value)


@pytest.mark.parametrize(
    "where",
    [
        "note = 'ORDER BY; LIMIT'",
        '"limit" > 3',
        "id IN (SELECT id FROM t ORDER BY id LIMIT 3)",
        "state = 'x' -- ORDER BY is a comment here",
    ],
)
def test_statement_words_inside_strings_names_subqueries_or_comments_are_allowed(
    where: str,
) -> None:
    assert Migration("f", source="src", target="dst", where=where).where == where


#: doubles whose every bit matters
DOUBLES = [
    1e300,
    -1e300,
    3.141592653589793,
    1.2345678901234567e-12,
    5e-324,
    1.7976931348623157e308,
    -0.0,
    0.1,
]


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


@pytest.mark.parametrize("target_kind", ["same", "sqlite", "postgresql"])
def test_mariadb_double_values_are_copied_bit_for_bit(make_db, target_kind: str) -> None:  # type: ignore[no-untyped-def]
    source = make_db("mariadb")
    target = source if target_kind == "same" else make_db(target_kind)
    rows = ", ".join(f"({i}, {v!r}, {v!r})" for i, v in enumerate(DOUBLES, 1))
    _execute(
        source,
        "CREATE TABLE src (id INT PRIMARY KEY, d DOUBLE, r REAL)",
        f"INSERT INTO src VALUES {rows}",
    )
    double = "DOUBLE PRECISION" if target_kind == "postgresql" else "DOUBLE"
    _execute(target, f"CREATE TABLE dst (id INT PRIMARY KEY, d {double}, r {double})")
    result = rowferry.run(Migration("d", source="src", target="dst"), source, target)
    assert result.done
    held = _raw(source, "SELECT id, d, r FROM src ORDER BY id")
    got = _raw(target, "SELECT id, d, r FROM dst ORDER BY id")
    assert [_bits(d) for _, d, _ in held] == [_bits(v or 0.0) for v in DOUBLES]  # MariaDB: no -0
    assert [(_bits(d), _bits(r)) for _, d, r in got] == [(_bits(d), _bits(r)) for _, d, r in held]


def test_a_transform_receives_mariadb_doubles_as_floats(make_db) -> None:  # type: ignore[no-untyped-def]
    url = make_db("mariadb")
    _execute(
        url,
        "CREATE TABLE src (id INT PRIMARY KEY, d DOUBLE)",
        "CREATE TABLE dst (id INT PRIMARY KEY, d DOUBLE, kind VARCHAR(20))",
        "INSERT INTO src VALUES (1, 1.2345678901234567e-12)",
    )

    def kind(row: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
        return {**row, "kind": type(row["d"]).__name__}

    result = rowferry.run(Migration("t", source="src", target="dst", transform=kind), url)
    assert result.done
    assert _raw(url, "SELECT d, kind FROM dst") == [(1.2345678901234567e-12, "float")]


_FLOAT_KEYS = {
    "sqlite": ["REAL", "FLOAT", "DOUBLE"],
    "mariadb": ["FLOAT", "DOUBLE", "REAL"],
    "postgresql": ["REAL", "DOUBLE PRECISION", "FLOAT"],
}


def test_floating_point_keys_are_refused_before_any_write(db_url: str, dialect_name: str) -> None:
    for i, kind in enumerate(_FLOAT_KEYS[dialect_name]):
        _execute(
            db_url,
            f"CREATE TABLE src{i} (k {kind} NOT NULL PRIMARY KEY, v INT)",
            f"CREATE TABLE dst{i} (k {kind} NOT NULL, v INT)",
            f"INSERT INTO src{i} VALUES (0.1, 1), (0.2, 2)",
        )
        with pytest.raises(SchemaError, match=r"\['k'\].*floating-point.*key=\["):
            rowferry.run(Migration(f"f{i}", source=f"src{i}", target=f"dst{i}"), db_url)
        assert _raw(db_url, f"SELECT COUNT(*) FROM dst{i}") == [(0,)]


def test_a_nan_in_a_double_column_is_copied_as_nan(make_db) -> None:  # type: ignore[no-untyped-def]
    url = make_db("postgresql")
    _execute(
        url,
        "CREATE TABLE src (id INT PRIMARY KEY, d DOUBLE PRECISION)",
        "CREATE TABLE dst (id INT PRIMARY KEY, d DOUBLE PRECISION)",
        "INSERT INTO src VALUES (1, 'NaN'), (2, 'Infinity'), (3, '-Infinity')",
    )
    assert rowferry.run(Migration("n", source="src", target="dst"), url).done
    got = [d for (d,) in _raw(url, "SELECT d FROM dst ORDER BY id")]
    assert math.isnan(got[0]) and got[1:] == [math.inf, -math.inf]


def test_sqlite_integer_primary_key_is_a_key(make_db) -> None:  # type: ignore[no-untyped-def]
    url = make_db("sqlite")
    _execute(
        url,
        "CREATE TABLE src (id INTEGER PRIMARY KEY, v TEXT)",
        "CREATE TABLE dst (id INTEGER PRIMARY KEY, v TEXT)",
        "INSERT INTO src (v) VALUES ('a'), ('b'), ('c')",
    )
    result = rowferry.run(Migration("i", source="src", target="dst"), url, chunk_size=2)
    assert result.done
    assert _raw(url, "SELECT id, v FROM dst ORDER BY id") == [(1, "a"), (2, "b"), (3, "c")]


def test_a_sqlite_int_primary_key_that_may_hold_null_is_refused(make_db) -> None:  # type: ignore[no-untyped-def]
    url = make_db("sqlite")
    _execute(
        url,
        "CREATE TABLE src (id INT PRIMARY KEY, v TEXT)",
        "CREATE TABLE dst (id INT, v TEXT)",
        "INSERT INTO src VALUES (NULL, 'a'), (1, 'b')",
    )
    with pytest.raises(SchemaError, match=r"\['id'\] may be NULL"):
        rowferry.run(Migration("i", source="src", target="dst"), url)


@pytest.mark.parametrize("target_kind", ["same", "sqlite", "mariadb"])
def test_instants_arrive_as_their_utc_time_whatever_the_session_zone(
    make_db,  # type: ignore[no-untyped-def]
    target_kind: str,
) -> None:
    source = make_db("postgresql")
    database = sa.make_url(source).database
    _execute(source, f"ALTER DATABASE {database} SET timezone TO 'Asia/Kolkata'")
    target = source if target_kind == "same" else make_db(target_kind)
    _execute(
        source,
        "CREATE TABLE src (id INT PRIMARY KEY, t TIMESTAMP(6) WITH TIME ZONE)",
        "INSERT INTO src VALUES (1, '2024-01-01 00:00:00.000001+00'), "
        "(2, '2024-06-30 23:30:00-08')",
    )
    naive = "DATETIME(6)" if target_kind == "mariadb" else "TIMESTAMP(6)"
    _execute(target, f"CREATE TABLE dst (id INT PRIMARY KEY, t {naive})")
    result = rowferry.run(Migration("tz", source="src", target="dst"), source, target)
    assert result.done
    got = [dt.datetime.fromisoformat(str(t)) for _, t in _raw(target, "SELECT id, t FROM dst")]
    assert sorted(got) == [dt.datetime(2024, 1, 1, 0, 0, 0, 1), dt.datetime(2024, 7, 1, 7, 30)]


def _snapshots_both_ways(url: str, chunk_size: int | None = None) -> list[dict[str, Any]]:
    """``src`` snapshotted into ``python`` (the Python path) and ``pushed`` (pushdown); the
    documents, equal both ways (asserted), ordered by id."""
    shape = rowferry.Snapshot(columns={"id": "id"}, document="doc")
    found = {}
    for target, pushdown in (("python", False), ("pushed", True)):
        migration = Migration(
            target, source="src", target=target, transform=shape, pushdown=pushdown
        )
        assert rowferry.run(migration, url, chunk_size=chunk_size or "auto").done
        rows = _raw(url, f"SELECT doc FROM {target} ORDER BY id")
        found[target] = [rowferry.documents.loads(d) for (d,) in rows]
    assert found["pushed"] == found["python"]
    return found["python"]


SQLITE_DECIMALS = [
    (1, "12"),  # stored as the integer 12
    (2, "0.1"),
    (3, "0.30000000000000004"),  # a double of 17 digits
    (4, "1.234"),  # more places than declared
    (5, "'12345678901234567890.5'"),  # held as the double 1.2345678901234567e19
    (8, "'n/a'"),  # text that spells no number stays text
    (6, "-0.0"),
    (7, "NULL"),
]


def test_sqlite_decimals_in_a_pushed_down_snapshot_are_those_of_the_python_path(
    make_db,  # type: ignore[no-untyped-def]
) -> None:
    url = make_db("sqlite")
    values = ", ".join(f"({i}, {v})" for i, v in SQLITE_DECIMALS)
    _execute(
        url,
        "CREATE TABLE src (id INTEGER NOT NULL PRIMARY KEY, m DECIMAL(10, 2), n NUMERIC)",
        f"INSERT INTO src (id, m) VALUES {values}",
        "UPDATE src SET n = m",
        "CREATE TABLE python (id INTEGER NOT NULL PRIMARY KEY, doc TEXT)",
        "CREATE TABLE pushed (id INTEGER NOT NULL PRIMARY KEY, doc TEXT)",
    )
    python = _snapshots_both_ways(url, chunk_size=3)
    assert [str(d["m"]) for d in python] == [
        "12.00",
        "0.10",
        "0.30000000000000004",
        "1.234",
        "12345678901234567000.00",
        "0.00",
        "None",
        "n/a",
    ]


def test_mariadb_durations_past_a_day_in_a_snapshot(make_db) -> None:  # type: ignore[no-untyped-def]
    url = make_db("mariadb")
    _execute(
        url,
        "CREATE TABLE src (id INT PRIMARY KEY, t TIME(6))",
        "INSERT INTO src VALUES (1, '-838:59:59'), (2, '25:00:00.5'), (3, '01:02:03'), (4, NULL)",
        "CREATE TABLE python (id INT PRIMARY KEY, doc JSON)",
        "CREATE TABLE pushed (id INT PRIMARY KEY, doc JSON)",
    )
    docs = _snapshots_both_ways(url)
    assert [(d["id"], d["t"]) for d in docs] == [
        (1, "-838:59:59.000000"),
        (2, "25:00:00.500000"),
        (3, "01:02:03.000000"),
        (4, None),
    ]


@pytest.mark.parametrize("chunk_size", [100, 2])
def test_keys_equal_under_the_targets_collation_are_quarantined_after_the_first(
    make_db,  # type: ignore[no-untyped-def]
    chunk_size: int,
) -> None:
    """'B', 'b' and 'b ' are three keys in PostgreSQL and one in a MariaDB column of a
    case-insensitive, PAD SPACE collation: the first written is kept, the others quarantined
    (in one chunk, where bisection puts them in different halves, or in later chunks)."""
    source, target = make_db("postgresql"), make_db("mariadb")
    _execute(
        source,
        'CREATE TABLE t (k VARCHAR(10) COLLATE "C" PRIMARY KEY, v INT)',
        "INSERT INTO t VALUES ('B', 1), ('a', 2), ('b', 3), ('b ', 4), ('c', 5), ('d', 6)",
    )
    _execute(target, "CREATE TABLE t (k VARCHAR(10) PRIMARY KEY, v INT) COLLATE utf8mb4_general_ci")
    result = rowferry.run(
        Migration("ci", source="t", target="t"), source, target, chunk_size=chunk_size
    )
    assert result.done and (result.rows_written, result.rows_quarantined) == (4, 2)
    assert _raw(target, "SELECT k, v FROM t ORDER BY v") == [("B", 1), ("a", 2), ("c", 5), ("d", 6)]
    quarantined = _raw(target, "SELECT key_json, reason FROM rowferry_quarantine ORDER BY key_json")
    assert sorted(k for k, _ in quarantined) == ['["b "]', '["b"]']
    assert all("Duplicate entry" in why for _, why in quarantined)


def test_verify_finds_doubles_and_durations_changed_past_what_sqlalchemy_reads(
    make_db,  # type: ignore[no-untyped-def]
) -> None:
    """verify compares what MariaDB holds: a double changed in its 12th digit and a duration
    changed by 24 hours are differences (read as SQLAlchemy reads them, both looked equal)."""
    url = make_db("mariadb")
    for table in ("src", "dst"):
        _execute(url, f"CREATE TABLE {table} (id INT PRIMARY KEY, d DOUBLE, t TIME)")
    _execute(
        url,
        "INSERT INTO src VALUES (1, 3.141592653589793, '01:00:00'), (2, 1e-12, '25:00:00'), "
        "(3, 0.5, '-02:00:00')",
        "INSERT INTO dst VALUES (1, 3.14159265359, '01:00:00'), (2, 1.4e-12, '01:00:00'), "
        "(3, 0.5, '-02:00:00')",
    )
    report = verify(Migration("v", source="src", target="dst"), url)
    assert not report.ok
    [mismatch] = report.range_mismatches
    assert sorted(mismatch.differing.keys) == [(1,), (2,)]


def test_bare_json_numbers_sqlite_holds_as_doubles_keep_every_digit(make_db) -> None:  # type: ignore[no-untyped-def]
    """SQLite holds a bare JSON number in a JSON column (numeric affinity) as a double: it is
    copied as that double's shortest text (its text in SQLite has 15 digits), and a number no
    double holds is quarantined on the way into SQLite."""
    lite, pg = make_db("sqlite"), make_db("postgresql")
    _execute(
        lite,
        "CREATE TABLE src (id INTEGER NOT NULL PRIMARY KEY, j JSON)",
        "INSERT INTO src VALUES (1, '0.30000000000000004'), (2, '12345678901234567890123'), "
        "(3, '[1.5]'), (4, '7')",
        "CREATE TABLE python (id INTEGER NOT NULL PRIMARY KEY, doc TEXT)",
        "CREATE TABLE pushed (id INTEGER NOT NULL PRIMARY KEY, doc TEXT)",
    )
    _execute(pg, "CREATE TABLE dst (id INT PRIMARY KEY, j JSONB)")
    assert rowferry.run(Migration("in", source="src", target="dst"), lite, pg).done
    assert _raw(pg, "SELECT id, j::text FROM dst ORDER BY id") == [
        (1, "0.30000000000000004"),
        (2, "12345678901234568000000"),  # the double SQLite holds
        (3, "[1.5]"),
        (4, "7"),
    ]
    docs = _snapshots_both_ways(lite)
    assert str(docs[0]["j"]) == "0.30000000000000004"

    _execute(
        pg, "DELETE FROM dst", "INSERT INTO dst VALUES (5, '12345678901234567890123'), (6, '2.5')"
    )
    _execute(lite, "CREATE TABLE back (id INTEGER NOT NULL PRIMARY KEY, j JSON)")
    result = rowferry.run(Migration("out", source="dst", target="back"), pg, lite)
    assert result.done and (result.rows_written, result.rows_quarantined) == (1, 1)
    assert _raw(lite, "SELECT id, j FROM back") == [(6, 2.5)]
    [(reason,)] = _raw(lite, "SELECT reason FROM rowferry_quarantine WHERE migration = 'out'")
    assert "would be rounded" in reason and "declare the column TEXT" in reason


def test_a_plain_copy_into_a_sqlite_table_made_by_create_table_as_select_keeps_every_value(
    make_db,  # type: ignore[no-untyped-def]
) -> None:
    """``CREATE TABLE ... AS SELECT`` declares a DATETIME column ``NUM``: the datetimes read
    from the source go back into it as the very text the source held."""
    url = make_db("sqlite")
    _execute(
        url,
        "CREATE TABLE src (id INTEGER NOT NULL PRIMARY KEY, at DATETIME, day DATE, "
        "total DECIMAL(10, 2), note TEXT)",
        "INSERT INTO src VALUES (1, '2023-08-24 02:37:06.063272', '2024-02-29', 12.5, 'a'), "
        "(2, '2024-01-01 00:00:00.000000', '1999-12-31', 0, NULL), (3, NULL, NULL, NULL, 'c')",
        "CREATE TABLE dst AS SELECT * FROM src WHERE 0",
    )
    assert "at NUM" in _raw(url, "SELECT sql FROM sqlite_master WHERE name = 'dst'")[0][0]
    result = rowferry.run(Migration("ctas", source="src", target="dst"), url, chunk_size=2)
    assert result.done and result.rows_written == 3
    every = "SELECT id, typeof(at), at, typeof(day), day, total, note FROM {} ORDER BY id"
    assert _raw(url, every.format("dst")) == _raw(url, every.format("src"))
