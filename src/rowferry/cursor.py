"""The keyset cursor: the key of the last row a chunk committed, as plain, lossless JSON.

A cursor is a list with one value per key column. It is stored as JSON text in the state table;
values JSON cannot carry exactly are tagged: ``{"datetime": "2024-05-01T10:00:00.000001"}``,
``{"date": ...}``, ``{"decimal": "12.50"}``, ``{"uuid": ...}``, ``{"bytes": base64}``. Every
cursor is checked on save: decoding the text must give back exactly the values it came from.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import operator
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa

from rowferry.errors import CursorError

Key = tuple[Any, ...]


def _encode_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        raise CursorError(f"key value {value!r} cannot be a cursor (NULL or boolean key)")
    if isinstance(value, int | str):
        return value
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat(timespec="microseconds")}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, float):
        return {"float": value.hex()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": base64.b64encode(bytes(value)).decode("ascii")}
    raise CursorError(f"key value of type {type(value).__name__} cannot be stored in a cursor")


_DECODERS: dict[str, Callable[[str], Any]] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "decimal": Decimal,
    "float": float.fromhex,
    "uuid": uuid.UUID,
    "bytes": base64.b64decode,
}


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        ((tag, text),) = value.items()
        return _DECODERS[tag](text)
    return value


def to_json(key: Key) -> list[Any]:
    """The cursor as plain JSON values (tagged where JSON has no exact type)."""
    return [_encode_value(v) for v in key]


def encode(key: Key) -> str:
    """Cursor text for ``key``, verified to decode back to exactly ``key``."""
    text = json.dumps([_encode_value(v) for v in key], ensure_ascii=False)
    back = decode(text)
    if back != tuple(key) or [type(v) for v in back] != [type(v) for v in key]:
        raise CursorError(f"cursor {key!r} does not survive the JSON round trip (got {back!r})")
    return text


def decode(text: str | None) -> Key | None:
    """The key a cursor text stands for; ``None`` means 'before the first row'."""
    if text is None:
        return None
    try:
        return tuple(_decode_value(v) for v in json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise CursorError(f"stored cursor {text!r} is not valid: {exc}") from exc


def after(columns: Sequence[sa.ColumnElement[Any]], key: Key) -> sa.ColumnElement[bool]:
    """The keyset predicate 'row comes after ``key``' in ``ORDER BY columns``.

    For (a, b): ``a >= :a AND (a > :a OR (a = :a AND b > :b))``. The leading ``a >= :a`` gives
    every optimizer a plain index range to start from; the rest keeps ties on ``a``.
    """
    return _keyset(columns, key, "rf_after", operator.gt, operator.gt)


def from_(columns: Sequence[sa.ColumnElement[Any]], key: Key) -> sa.ColumnElement[bool]:
    """'row comes at or after ``key``': as :func:`after`, with ``>=`` on the last column."""
    return _keyset(columns, key, "rf_from", operator.gt, operator.ge)


def up_to(columns: Sequence[sa.ColumnElement[Any]], key: Key) -> sa.ColumnElement[bool]:
    """'row comes at or before ``key``' in ``ORDER BY columns`` (the mirror of
    :func:`from_`, with its own parameter names so that both fit in one query)."""
    return _keyset(columns, key, "rf_up_to", operator.lt, operator.le)


def _keyset(
    columns: Sequence[sa.ColumnElement[Any]],
    key: Key,
    prefix: str,
    beyond: Callable[[Any, Any], Any],
    last: Callable[[Any, Any], Any],
) -> sa.ColumnElement[bool]:
    """``beyond`` on one column after equality on those before it; ``last`` for the last
    column; led by the first column's range (``>=`` or ``<=``) for the optimizer."""
    params = [
        sa.bindparam(f"{prefix}_{i}", value, type_=col.type)
        for i, (col, value) in enumerate(zip(columns, key, strict=True))
    ]
    if len(columns) == 1:
        return cast(sa.ColumnElement[bool], last(columns[0], params[0]))
    branches = []
    for i, col in enumerate(columns):
        equal = [columns[j] == params[j] for j in range(i)]
        compare = last if i == len(columns) - 1 else beyond
        branches.append(sa.and_(*equal, compare(col, params[i])))
    lead = operator.ge if beyond is operator.gt else operator.le
    return sa.and_(lead(columns[0], params[0]), sa.or_(*branches))


def check_advanced(previous: Key | None, last: Key, migration: str) -> None:
    """Fail when a chunk ends where the previous one ended: the cursor did not move."""
    if previous is not None and tuple(previous) == tuple(last):
        raise CursorError(
            f"migration {migration!r}: the cursor did not advance past {list(last)!r}; "
            "the key columns are probably not unique (declare a unique key with key=[...])"
        )
