"""The keyset cursor: lossless JSON for every key type, and a loud failure when it stops moving."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from rowferry import cursor
from rowferry.errors import CursorError

KEYS = [
    (1,),
    (2**63 - 1,),
    ("order-ü-王",),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"),),
    (dt.datetime(2024, 5, 1, 10, 0, 0, 1),),
    (dt.datetime(2024, 5, 1, 10, 0, 0, 999999, tzinfo=dt.UTC),),
    (dt.date(2024, 2, 29),),
    (Decimal("12.50"),),
    (Decimal("-0.000001"),),
    (b"\x00\xffbin",),
    (0.1,),
    (7, "b", dt.datetime(2020, 1, 1, 0, 0, 0, 5)),
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k)[:40] for k in KEYS])
def test_cursor_round_trips_through_json_without_loss(key: tuple[object, ...]) -> None:
    text = cursor.encode(key)
    back = cursor.decode(text)
    assert back == key
    assert [type(v) for v in back or ()] == [type(v) for v in key]


def test_decimal_scale_survives_the_round_trip() -> None:
    assert str(cursor.decode(cursor.encode((Decimal("1.10"),)))[0]) == "1.10"  # type: ignore[index]


def test_no_cursor_means_before_the_first_row() -> None:
    assert cursor.decode(None) is None


@pytest.mark.parametrize("bad", [(None,), (True,), (object(),)])
def test_values_that_cannot_be_a_cursor_are_refused(bad: tuple[object, ...]) -> None:
    with pytest.raises(CursorError):
        cursor.encode(bad)


def test_a_corrupt_stored_cursor_is_an_error() -> None:
    with pytest.raises(CursorError, match="not valid"):
        cursor.decode('[{"nonsense": 1}]')


def test_a_cursor_that_did_not_advance_is_an_error_not_a_loop() -> None:
    with pytest.raises(CursorError, match="did not advance"):
        cursor.check_advanced((5, "a"), (5, "a"), "m")
    cursor.check_advanced((5, "a"), (5, "b"), "m")
    cursor.check_advanced(None, (1,), "m")


@pytest.mark.parametrize("width", [1, 2, 3])
def test_keyset_predicates_select_exactly_the_rows_before_and_after_a_key(
    db_url: str, width: int
) -> None:
    """after (>), from_ (>=) and up_to (<=) in key order, with ties on the leading columns."""
    metadata = sa.MetaData()
    names = ["a", "b", "c"][:width]
    columns = (sa.Column(n, sa.Integer, primary_key=True, autoincrement=False) for n in names)
    table = sa.Table("t", metadata, *columns)
    rows = sorted(itertools.product(range(1, 4), repeat=width))
    engine = sa.create_engine(db_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [dict(zip(names, r, strict=True)) for r in rows])
    key = [table.c[n] for n in names]
    with engine.connect() as conn:
        for probe in rows:
            for predicate, expected in [
                (cursor.after, [r for r in rows if r > probe]),
                (cursor.from_, [r for r in rows if r >= probe]),
                (cursor.up_to, [r for r in rows if r <= probe]),
            ]:
                found = conn.execute(sa.select(*key).where(predicate(key, probe)).order_by(*key))
                assert [tuple(r) for r in found] == expected, (predicate.__name__, probe)
        between = sa.select(*key).where(cursor.from_(key, rows[1]), cursor.up_to(key, rows[-2]))
        assert [tuple(r) for r in conn.execute(between.order_by(*key))] == rows[1:-1]
    engine.dispose()
