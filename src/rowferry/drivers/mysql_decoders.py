"""Faster decoding of MySQL date and time values for PyMySQL.

PyMySQL parses every DATETIME, TIMESTAMP and DATE value with a regular expression and builds the
object from its groups in Python. ``datetime.fromisoformat`` (C) reads the text MySQL sends
(``YYYY-MM-DD``, ``YYYY-MM-DD hh:mm:ss`` with 0 to 6 fraction digits) to the same values.
Anything it refuses (``0000-00-00``, ``2007-02-31`` in lax SQL modes) goes to PyMySQL's own
converter, which returns such values as text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymysql import converters  # type: ignore[import-untyped]
from pymysql.constants import FIELD_TYPE  # type: ignore[import-untyped]


def decode_datetime(value: str | bytes) -> Any:
    try:
        if isinstance(value, str) and len(value) >= 19:
            return dt.datetime.fromisoformat(value)
    except ValueError:
        pass
    return converters.convert_datetime(value)


def decode_date(value: str | bytes) -> Any:
    try:
        if isinstance(value, str) and len(value) == 10:
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    return converters.convert_date(value)


def conversions() -> dict[Any, Any]:
    """PyMySQL's ``conv`` argument: its own conversions with the faster date and time decoders."""
    return {
        **converters.conversions,
        FIELD_TYPE.DATETIME: decode_datetime,
        FIELD_TYPE.TIMESTAMP: decode_datetime,
        FIELD_TYPE.DATE: decode_date,
    }
