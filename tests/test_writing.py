"""The writer's parameters: a column passes as it is unless one of its values needs preparing."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from rowferry.chunks.write import Prepare, Writer, _by_columns
from rowferry.dialects.lookup import dialect_for
from rowferry.schema.resolve import TargetPlan


def _writer(engine: sa.Engine) -> Writer:
    meta = sa.MetaData()
    table = sa.Table(
        "t",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text),
        sa.Column("ref", sa.String(36)),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("at", sa.DateTime),
    )
    return Writer(TargetPlan(table, ("id",), "error"), dialect_for(engine))


ROWS: list[dict[str, Any]] = [
    {"id": 1, "body": "text", "ref": None, "amount": Decimal("1.50"), "at": None},
    {"id": 2, "body": {"a": [1, 2]}, "ref": uuid.UUID(int=5), "amount": None, "at": None},
    {"id": 3, "body": None, "ref": "plain", "amount": Decimal("-2.00"), "at": None},
    {"id": 4, "body": [1], "ref": "x", "amount": None, "at": dt.datetime(2024, 1, 2, 3, 4, 5)},
]
COLUMNS = ("id", "body", "ref", "amount", "at")


def _one_by_one(writer: Writer) -> list[tuple[Any, ...]]:
    prepare = [Prepare(writer.plan.table.c[c], writer.dialect) for c in COLUMNS]
    return [tuple(p(row[c]) for p, c in zip(prepare, COLUMNS, strict=True)) for row in ROWS]


def test_prepared_columns_give_what_preparing_each_value_gives() -> None:
    engine = sa.create_engine("sqlite://")
    writer = _writer(engine)
    values = writer.values(COLUMNS, ROWS)
    assert values == _one_by_one(writer)
    assert json.loads(values[1][1]) == {"a": [1, 2]} and values[3][1] == "[1]"
    assert values[1][2] == str(uuid.UUID(int=5))
    assert values[0][3] == "1.50"  # SQLite takes decimals as text


def test_columns_that_need_nothing_pass_as_they_are() -> None:
    engine = sa.create_engine("postgresql+psycopg://")  # no connection: the dialect only
    writer = _writer(engine)
    plain = [{**row, "body": "text", "ref": "r"} for row in ROWS]
    values = writer.values(COLUMNS, plain)
    assert values == [tuple(row[c] for c in COLUMNS) for row in plain]
    for got, row in zip(values, plain, strict=True):
        assert got[3] is row["amount"] and got[4] is row["at"]
    assert writer.values(("id",), plain) == [(1,), (2,), (3,), (4,)]


def test_rows_are_grouped_by_their_set_of_columns() -> None:
    rows = [{"a": 1, "b": 2}, {"b": 3, "a": 4}, {"a": 5}]
    assert _by_columns(rows) == {("a", "b"): rows[:1], ("b", "a"): rows[1:2], ("a",): rows[2:]}
    assert _by_columns(rows[:2]) == {("a", "b"): rows[:2]}  # same set: one group
    assert _by_columns([]) == {}
