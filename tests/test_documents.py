"""rowferry's one JSON rendering of database values."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from rowferry import documents


def test_decimals_are_numbers_with_their_exact_digits() -> None:
    text = documents.dumps({"total": Decimal("12.50"), "tiny": Decimal("0.000001")})
    assert text == '{"total":12.50,"tiny":0.000001}'
    assert documents.loads(text) == {"total": Decimal("12.50"), "tiny": Decimal("0.000001")}


def test_datetimes_always_have_six_fractional_digits() -> None:
    assert documents.dumps([dt.datetime(2024, 1, 2, 3, 4, 5)]) == '["2024-01-02T03:04:05.000000"]'
    aware = dt.datetime(2024, 1, 2, 3, 4, 5, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert documents.dumps([aware]) == '["2024-01-02T03:04:05.000007+02:00"]'


def test_dates_uuids_nulls_and_text() -> None:
    value = [dt.date(2024, 2, 29), uuid.UUID(int=1), None, "José 王小明"]
    assert documents.dumps(value) == (
        '["2024-02-29","00000000-0000-0000-0000-000000000001",null,"José 王小明"]'
    )


def test_a_string_that_looks_like_a_marker_stays_a_string() -> None:
    assert documents.loads(documents.dumps(["\x0012.5\x00"])) == ["\x0012.5\x00"]


def test_non_finite_decimals_are_refused() -> None:
    with pytest.raises(ValueError, match="JSON number"):
        documents.dumps([Decimal("NaN")])


def test_integers_beyond_64_bits_and_exponent_decimals_still_render() -> None:
    text = documents.dumps({"big": 2**70, "d": Decimal("1E+2"), "n": [Decimal("-0.5")]})
    assert text == '{"big":1180591620717411303424,"d":100,"n":[-0.5]}'


def test_unknown_types_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="type object"):
        documents.dumps({"x": object()})


def test_the_fast_and_the_standard_library_renderings_agree() -> None:
    document = {
        "total": Decimal("12.50"),
        "at": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        "day": dt.date(2024, 2, 29),
        "when": dt.time(7, 8, 9),
        "id": uuid.UUID(int=5),
        "raw": b"\x00\xff",
        "text": 'quote " and \\ and \n and 王',
        "list": [1, 2.5, None, True, {"nested": Decimal("-0.001")}],
    }
    assert documents.dumps(document) == documents._dumps_slowly(document)
