"""Related rows packed as JSON by MariaDB give exactly the rows the plain query gives."""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Any

import pytest
import sqlalchemy as sa

from rowferry import HasMany, Migration, Target
from rowferry.chunks import packed
from rowferry.chunks.read import Chunk, ChunkReader, _RelationLoader
from rowferry.dialects.connect import create_engine
from rowferry.dialects.lookup import dialect_for
from rowferry.schema import resolve

HAS_MYSQLCLIENT = importlib.util.find_spec("MySQLdb") is not None

# Every packable MariaDB type, with values that are easy to get wrong.
CHILD_DDL = """
CREATE TABLE child (
  id BIGINT UNSIGNED PRIMARY KEY, parent_id INT NOT NULL, pos INT NOT NULL,
  i TINYINT, u BIGINT UNSIGNED, b BOOL, d DECIMAL(65, 30), m DECIMAL(10, 2),
  f FLOAT, g DOUBLE, v VARCHAR(100), c CHAR(5), t TEXT CHARACTER SET latin1, e ENUM('a', 'b'),
  dt0 DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts TIMESTAMP(6) NULL, dd DATE, tm TIME(6),
  y YEAR, bl BLOB, vb VARBINARY(10), j JSON,
  KEY (parent_id)
)
"""
NASTY = [
    ", ".join(
        [
            "1, 1, 2, -128, 18446744073709551615, 1",
            "12345678901234567890123456789.123456789012345678901234567890, -0.01",
            "0.1, 0.30000000000000004",
            "'quote '' and \\\\ backslash\\n\\ttab \U0001f600 中文', 'ab  ', 'Ærø', 'b'",
            "'2024-02-29 23:59:59', '2024-02-29 23:59:59.5', '1000-01-01 00:00:00.000001'",
            "'2038-01-19 03:14:07.999999', '2024-02-29', '-838:59:59.000000', 2155",
            "UNHEX('00FF0A5C27'), UNHEX(''), '{\"k\": [1, 2.50, \"x\"]}'",
        ]
    ),
    ", ".join(
        [
            "2, 1, 1, 127, 0, 0, -0.000000000000000000000000000001, 99999999.99",
            "-3.4e38, 1.7976931348623157e308, '', '', '', 'a'",
            "'0000-00-00 00:00:00', '0000-00-00 00:00:00.000', '2024-01-01 00:00:00.000000'",
            "NULL, '0000-00-00', '00:00:00', 1901, '', NULL, 'null'",
        ]
    ),
    "3, 2, 1" + ", NULL" * 21,
]


@pytest.fixture
def mariadb_url(make_db: Any) -> str:
    url: str = make_db("mariadb")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET SESSION sql_mode = ''")  # zero dates
        conn.exec_driver_sql("CREATE TABLE parent (id INT PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO parent VALUES (1), (2), (3)")
        conn.exec_driver_sql(CHILD_DDL)
        for row in NASTY:
            conn.exec_driver_sql(f"INSERT INTO child VALUES ({row})".replace("%", "%%"))
        conn.exec_driver_sql("CREATE TABLE target (id INT PRIMARY KEY)")
    engine.dispose()
    return url


def _reader(conn: sa.Connection, pack: bool, order_by: str = "pos") -> ChunkReader:
    migration = Migration(
        name="m",
        source="parent",
        relations={"kids": HasMany("child", foreign_key="parent_id", order_by=order_by)},
        transform=lambda row, related: {"id": row["id"]},
        target=Target("target", unique_key=["id"]),
    )
    return ChunkReader(resolve.resolve_source(conn, migration), dialect_for(conn), pack=pack)


def _plain_chunk_and_packed_reader(conn: sa.Connection) -> tuple[Chunk, ChunkReader]:
    return _reader(conn, pack=False).read(conn, None, 10), _reader(conn, pack=True)


def _typed(related: list[Any]) -> list[Any]:
    """Values with their types (floats by repr), to compare exactly."""
    return [
        [{k: (type(v).__name__, repr(v)) for k, v in row.items()} for row in slot["kids"]]
        for slot in related
    ]


def test_packed_rows_equal_the_plain_rows_value_for_value_and_type_for_type(
    mariadb_url: str,
) -> None:
    engine = create_engine(mariadb_url)
    with engine.connect() as conn:
        plain, reader = _plain_chunk_and_packed_reader(conn)
        assert reader.pack and reader.packing(reader.plan.relations[0]) is not None
        found = reader.read(conn, None, 10)
    engine.dispose()
    assert [len(s["kids"]) for s in plain.related] == [2, 1, 0]
    assert [r["id"] for r in plain.related[0]["kids"]] == [2, 1]  # ordered by pos
    assert _typed(found.related) == _typed(plain.related)
    first = found.related[0]["kids"][1]
    assert first["u"] == 2**64 - 1 and first["bl"] == bytes.fromhex("00FF0A5C27")
    assert first["c"] == "ab" and first["t"] == "Ærø" and "\\ backslash\n\ttab 😀" in first["v"]


def test_a_cut_group_is_detected_and_the_relation_read_with_the_plain_query(
    mariadb_url: str,
) -> None:
    engine = create_engine(mariadb_url)
    with engine.connect() as conn:
        plain, reader = _plain_chunk_and_packed_reader(conn)
        rel = reader.plan.relations[0]
        small = dataclasses.replace(reader.packing(rel), max_len=40)  # type: ignore[type-var]
        with pytest.raises(packed.Incomplete):
            small.fetch(conn, [(1,), (2,)])
        reader._packings[id(rel)] = small
        found = reader.read(conn, None, 10)
    engine.dispose()
    assert _typed(found.related) == _typed(plain.related)


def test_a_relation_with_a_column_that_cannot_be_packed_is_read_plain(mariadb_url: str) -> None:
    engine = create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE child ADD COLUMN s SET('x', 'y') NULL")
    with engine.connect() as conn:
        reader = _reader(conn, pack=True)
        assert reader.packing(reader.plan.relations[0]) is None
        assert len(reader.read(conn, None, 10).related[0]["kids"]) == 2
    engine.dispose()


def test_only_mariadb_through_pymysql_packs(db_url: str) -> None:
    urls = [db_url]
    if db_url.startswith("mysql+pymysql") and HAS_MYSQLCLIENT:
        urls.append(db_url.replace("mysql+pymysql", "mysql+mysqldb"))
    for url in urls:
        engine = create_engine(url, must_exist=False)
        with engine.connect() as conn:
            assert dialect_for(conn).packs_relations() == url.startswith("mysql+pymysql")
        engine.dispose()


def _sent(engine: sa.Engine) -> list[tuple[str, Any]]:
    """The statements (and parameters) the engine sends from now on."""
    sent: list[tuple[str, Any]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        sent.append((statement, params))

    return sent


@pytest.mark.parametrize("pack", [True, False])
def test_integer_keys_are_written_as_literals_and_other_keys_stay_parameters(
    mariadb_url: str, pack: bool
) -> None:
    engine = create_engine(mariadb_url)
    with engine.connect() as conn:
        reader = _reader(conn, pack=pack)
        rel = reader.plan.relations[0]
        loader = _RelationLoader(conn, reader.dialect, reader.packing)
        sent = _sent(engine)
        as_ints = loader._rows(rel, [(1,), (2,)])
        as_text = loader._rows(rel, [("1",), ("2",)])  # compared by MariaDB as numbers
        as_bools = loader._rows(rel, [(True,)])  # 1: not written as the literal True
    engine.dispose()
    assert [r["id"] for r in as_ints] == [2, 1, 3] and as_text == as_ints
    assert [r["id"] for r in as_bools] == [2, 1]
    (ints_sql, ints_params), (text_sql, text_params), (_, bool_params) = sent
    assert "IN (1, 2)" in ints_sql and not ints_params
    assert "IN (1, 2)" not in text_sql and sorted(text_params.values()) == ["1", "2"]
    assert list(bool_params.values()) == [True]
    if pack:  # compiled once, then each call writes its own keys in
        assert ints_sql.startswith("SET STATEMENT group_concat_max_len")
        assert reader.packing(rel)._compiled  # type: ignore[union-attr]


def test_packed_rows_looked_up_by_a_composite_key_equal_the_plain_rows(
    mariadb_url: str,
) -> None:
    engine = create_engine(mariadb_url)
    with engine.connect() as conn:
        migration = Migration(
            name="m",
            source="parent",
            relations={
                "kids": HasMany("child", foreign_key=["parent_id", "pos"], references=["id", "id"])
            },
            transform=lambda row, related: {"id": row["id"]},
            target=Target("target", unique_key=["id"]),
        )
        plan = resolve.resolve_source(conn, migration)
        rel = plan.relations[0]
        packing = packed.packing(rel, conn.dialect)
        assert packing is not None
        keys = [(1, 1), (1, 2), (2, 1)]
        found = packing.fetch(conn, keys)
        plain = _RelationLoader(conn, dialect_for(conn), lambda rel: None)._rows(rel, keys)
    engine.dispose()
    assert [r["id"] for r in plain] == [2, 1, 3]
    assert _typed([{"kids": found}]) == _typed([{"kids": plain}])


def test_a_packed_statement_with_parameters_of_its_own_takes_its_keys_as_parameters(
    mariadb_url: str,
) -> None:
    engine = create_engine(mariadb_url)
    with engine.connect() as conn:
        reader = _reader(conn, pack=True)
        rel = reader.plan.relations[0]
        packing = reader.packing(rel)
        assert packing is not None
        tagged = dataclasses.replace(
            packing,
            names=(*packing.names, "tag"),
            fields=(*packing.fields, sa.literal("100%")),
            _compiled={},
        )
        sent = _sent(engine)
        found = tagged.fetch(conn, [(1,), (2,)])
        plain = _RelationLoader(conn, reader.dialect, lambda rel: None)._rows(rel, [(1,), (2,)])
    engine.dispose()
    assert [row.pop("tag") for row in found] == ["100%"] * 3
    assert _typed([{"kids": found}]) == _typed([{"kids": plain}])
    (_, params), _ = sent
    assert "100%" in params.values() and sorted(v for v in params.values() if v != "100%") == [1, 2]
