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
