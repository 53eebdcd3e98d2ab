"""rowferry's one JSON rendering of database values, used for every JSON document it writes.

The rendering is part of the contract (the pushdown path produces the same documents in SQL):

- ``Decimal``: a JSON number with exactly the digits the database returned (``12.50`` stays
  ``12.50``; never a float, never exponent notation);
- ``datetime``: a string ``YYYY-MM-DDTHH:MM:SS.ffffff``, always six fractional digits, followed by
  the UTC offset (``+00:00``) only when the value carries a time zone;
- ``date``: ``YYYY-MM-DD``; ``time``: ``HH:MM:SS.ffffff``; a duration (MySQL/MariaDB ``TIME``,
  which reaches 838 hours either way) ``[-]HH:MM:SS.ffffff`` in hours, as MySQL writes it;
- ``UUID``: its canonical string; ``bytes``: base64; ``NULL``: ``null``;
- text is written as UTF-8, not escaped (``"王小明"``, not ``"\\u738b..."``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import uuid
from decimal import Decimal
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_TOKEN = secrets.token_hex(6)
_NUMBER = re.compile('"\\\\u0000' + _TOKEN + '([-0-9.]+)\\\\u0000"')


def render_datetime(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        return value.isoformat(timespec="microseconds")
    # the hot path: plain isoformat() (cheaper than timespec=), six zeros when it omits them
    text = value.isoformat()
    return text if value.microsecond else text + ".000000"


def render_decimal(value: Decimal) -> str:
    text = str(value)  # plain digits for what databases return; cheaper than format()
    if not text[-1].isdigit():
        raise ValueError(f"cannot render {value} as a JSON number")
    return format(value, "f") if "E" in text else text


def render_duration(value: dt.timedelta) -> str:
    micros = value // _MICROSECOND
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    sign = "-" if micros < 0 else ""
    return f"{sign}{hours:02d}:{minute:02d}:{second:02d}.{fraction:06d}"


_MICROSECOND = dt.timedelta(microseconds=1)


def _default(value: Any) -> Any:
    """orjson's hook for the values it does not render itself (or not our way).

    The two common types are tested by exact type and rendered inline (this runs for most
    values of a snapshot: one call less each is measurable)."""
    kind = type(value)
    if kind is _DATETIME and value.tzinfo is None:
        return value.isoformat() if value.microsecond else value.isoformat() + ".000000"
    if kind is Decimal:
        text = str(value)
        if text[-1].isdigit() and "E" not in text:
            return orjson.Fragment(text)
    if isinstance(value, Decimal):
        return _decimal_fragment(value)
    return _text(value)


def _decimal_fragment(value: Decimal) -> orjson.Fragment:
    return orjson.Fragment(render_decimal(value))


_DATETIME = dt.datetime


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return render_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.%f")
    if isinstance(value, dt.timedelta):
        return render_duration(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot render a value of type {type(value).__name__} as JSON")


def _slow_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return "\x00" + _TOKEN + render_decimal(value) + "\x00"
    return _text(value)


def dumps(document: Any) -> str:
    """Render a document (dicts, lists and database values) as JSON text."""
    try:
        return orjson.dumps(document, default=_default, option=_OPTIONS).decode()
    except orjson.JSONEncodeError as exc:
        if isinstance(exc.__cause__, ValueError | TypeError):
            raise exc.__cause__ from None
        # Integers beyond 64 bits: the standard library renders them.
        return _dumps_slowly(document)


def _dumps_slowly(document: Any) -> str:
    text = json.dumps(document, default=_slow_default, ensure_ascii=False, separators=(",", ":"))
    if _TOKEN in text:
        text = _NUMBER.sub(r"\1", text)
    return text


def loads(text: str | bytes) -> Any:
    """Parse a document, keeping decimals exact (``parse_float=Decimal``)."""
    return json.loads(text, parse_float=Decimal)
