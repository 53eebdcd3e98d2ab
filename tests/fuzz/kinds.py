"""Column kinds: each database's real type for a kind of value, its edge values, and how the
oracle compares what two drivers return for it.

``ddl`` names the type of each database that holds the kind (a missing database: it has no
such type). ``values(rng, dialect)`` gives values the source database of that dialect can
hold, ready for its driver. ``canon`` turns what any of the three drivers returns into one
comparable value: that is the documented conversion (a boolean becomes 1/0 where the target
has no boolean; SQLite keeps datetimes as ISO text; a time zone becomes UTC).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

DIALECTS = ("sqlite", "mariadb", "postgresql")
UTC = dt.UTC


@dataclass(frozen=True)
class Kind:
    name: str
    ddl: dict[str, str]
    values: Callable[[random.Random, str], list[Any]]
    canon: Callable[[Any], Any]
    key: bool = False
    #: the dialects whose tables are generated with this kind (default: those of ``ddl``)
    sources: tuple[str, ...] | None = None
    #: how the oracle selects the column (``{c}`` is its quoted name), per dialect
    select: dict[str, str] = field(default_factory=dict)

    def on(self, dialect: str) -> bool:
        return dialect in (self.sources or self.ddl)


def _pick(rng: random.Random, edges: list[Any], make: Callable[[], Any], n: int = 3) -> list[Any]:
    return edges + [make() for _ in range(n)]


# integers -----------------------------------------------------------------------------------


def _ints(bits: int) -> Callable[[random.Random, str], list[Any]]:
    top = 2 ** (bits - 1) - 1

    def values(rng: random.Random, dialect: str) -> list[Any]:
        return _pick(rng, [0, 1, -1, top, -top - 1], lambda: rng.randint(-top - 1, top))

    return values


def _canon_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return ("float", value)  # an integer stored as a float has lost its exactness
    return int(value) if isinstance(value, int | Decimal | bool) else ("other", repr(value))


def _uint64(rng: random.Random, dialect: str) -> list[Any]:
    return _pick(rng, [0, 2**63 - 1, 2**63, 2**64 - 1], lambda: rng.randint(0, 2**64 - 1))


def _year(rng: random.Random, dialect: str) -> list[Any]:
    return _pick(rng, [1901, 2155, 2000], lambda: rng.randint(1901, 2155))


# floats --------------------------------------------------------------------------------------


def _doubles(rng: random.Random, dialect: str) -> list[Any]:
    edges = [0.1, 1e300, -1e300, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308]
    edges += [3.141592653589793, 1.2345678901234567e-12, -0.0]
    if dialect == "postgresql":
        edges += [math.nan, math.inf, -math.inf]
    if dialect == "sqlite":
        edges += [math.inf, -math.inf]

    def make() -> float:
        return struct.unpack("<d", struct.pack("<Q", rng.getrandbits(62)))[0]  # finite

    return _pick(rng, edges, make)


def _canon_double(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else struct.pack("<d", value)
    if isinstance(value, int):  # SQLite keeps an integral REAL as an integer
        return struct.pack("<d", float(value)) if abs(value) < 2**53 else ("int", value)
    return ("other", repr(value))


# decimals ------------------------------------------------------------------------------------


def _decimals(rng: random.Random, dialect: str) -> list[Any]:
    wide = Decimal("12345678901234567890123456789012345.123456789012345678901234567890")
    edges = [Decimal(0), Decimal("-1.5"), wide, -wide, Decimal("1E-30"), Decimal("0.1")]

    def make() -> Decimal:
        return Decimal(rng.randint(-(10**40), 10**40)).scaleb(-rng.randint(0, 30))

    found = _pick(rng, edges, make)
    return [str(v) for v in found] if dialect == "sqlite" else found


def _key_decimals(rng: random.Random, dialect: str) -> list[Any]:
    found = _pick(
        rng,
        [Decimal(0), Decimal("-0.000001"), Decimal("99999999999999.999999")],
        lambda: Decimal(rng.randint(-(10**19), 10**19)).scaleb(-6),
    )
    return [str(v) for v in found] if dialect == "sqlite" else found


def _canon_decimal(value: Any) -> Any:
    if isinstance(value, float):  # SQLite's DECIMAL holds doubles: their shortest decimal
        return Decimal(repr(value)) if math.isfinite(value) else ("float", value)
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return ("other", repr(value))


# text and bytes ------------------------------------------------------------------------------

_TEXTS = ["", "a", "A", "a ", " a", "ü", "中文", "😀 4 bytes", "it's", "back\\slash", "new\nline"]
_ALPHABET = "abcXYZ éü中😀'\"\\%_\t"


def _texts(rng: random.Random, dialect: str) -> list[Any]:
    edges = [*_TEXTS, "z" * 200]
    if dialect != "postgresql":
        edges.append("nul\x00inside")
    return _pick(rng, edges, lambda: "".join(rng.choices(_ALPHABET, k=rng.randint(0, 30))))


def _key_texts(rng: random.Random, dialect: str) -> list[Any]:
    edges = ["", "a", "A", "b ", "B", "ü", "u", "中文", "😀", "z" * 60]
    return _pick(rng, edges, lambda: "".join(rng.choices("abAB zü", k=rng.randint(1, 6))), 6)


def _canon_text(value: Any) -> Any:
    return value if isinstance(value, str) else ("other", repr(value))


def _bytes(rng: random.Random, dialect: str) -> list[Any]:
    edges = [b"", b"\x00", b"\x00\xff", b"ok", bytes(range(256))[:200]]
    return _pick(rng, edges, lambda: rng.randbytes(rng.randint(0, 40)))


def _bytes16(rng: random.Random, dialect: str) -> list[Any]:
    return _pick(rng, [b"\x00" * 16, b"\xff" * 16], lambda: rng.randbytes(16), 6)


def _canon_bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else ("other", value)


# times ---------------------------------------------------------------------------------------


def _datetime(rng: random.Random) -> dt.datetime:
    start = dt.datetime(1000, 1, 1)
    return start + dt.timedelta(microseconds=rng.randint(0, 9000 * 365 * 86400 * 10**6))


def _datetimes(rng: random.Random, dialect: str) -> list[Any]:
    edges = [dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)]
    edges += [dt.datetime(2024, 2, 29, 12, 0, 0, 1)]
    found = _pick(rng, edges, lambda: _datetime(rng), 4)
    if dialect == "sqlite":  # as applications store them: either separator
        return [v.isoformat(sep=rng.choice(" T"), timespec="microseconds") for v in found]
    return found


def _canon_datetime(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return ("other", value)
    return value if isinstance(value, dt.datetime) else ("other", repr(value))


def _dates(rng: random.Random, dialect: str) -> list[Any]:
    edges = [dt.date(1000, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29)]
    found = _pick(rng, edges, lambda: _datetime(rng).date(), 4)
    return [v.isoformat() for v in found] if dialect == "sqlite" else found


def _canon_date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return ("other", value)
    if isinstance(value, dt.datetime):
        return ("datetime", value)
    return value if isinstance(value, dt.date) else ("other", repr(value))


def _instants(rng: random.Random, dialect: str) -> list[Any]:
    zones = [
        UTC,
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(-dt.timedelta(hours=8)),
    ]
    edges = [dt.datetime(1970, 1, 2, tzinfo=UTC), dt.datetime(2038, 1, 1, 3, 14, 7, 999999, UTC)]

    def make() -> dt.datetime:
        naive = dt.datetime(1971, 1, 1) + dt.timedelta(
            microseconds=rng.randint(0, 60 * 365 * 86400 * 10**6)
        )
        return naive.replace(tzinfo=rng.choice(zones))

    return _pick(rng, edges, make)


def _canon_instant(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return ("other", value)
    if not isinstance(value, dt.datetime):
        return ("other", repr(value))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _durations(rng: random.Random, dialect: str) -> list[Any]:
    edges = [
        dt.timedelta(0),
        dt.timedelta(hours=25),
        -dt.timedelta(hours=838, minutes=59, seconds=59),
    ]
    edges += [dt.timedelta(hours=838, minutes=59, seconds=59, microseconds=999999)]
    return _pick(rng, edges, lambda: dt.timedelta(microseconds=rng.randint(-(10**12), 10**12)))


def _canon_duration(value: Any) -> Any:
    return value if isinstance(value, dt.timedelta) else ("other", repr(value))


# others --------------------------------------------------------------------------------------


def _bools(rng: random.Random, dialect: str) -> list[Any]:
    return [True, False, rng.random() < 0.5]


def _canon_bool(value: Any) -> Any:
    return int(value) if isinstance(value, bool | int) else ("other", repr(value))


_JSON = [
    '{"a": 1, "b": [true, false, null]}',
    '[1, 2.5, "x"]',
    "12345678901234567890123",
    '{"big": 1.000000000000000000001, "neg": -0.5e-7}',
    "null",
    '"a string"',
    '{"u": "😀", "nested": {"k": []}}',
    "{}",
]


def _jsons(rng: random.Random, dialect: str) -> list[Any]:
    return [*_JSON, json.dumps({"n": rng.randint(-(10**20), 10**20), "s": "é"})]


def _canon_json(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return ("json", Decimal(repr(value)))  # a bare number SQLite's affinity made a number
    if not isinstance(value, str):
        return ("other", repr(value))
    try:
        return ("json", _frozen(json.loads(value, parse_float=Decimal)))
    except ValueError:
        return ("other", value)


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return frozenset((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    return Decimal(value) if isinstance(value, int | Decimal) else value


def _uuids(rng: random.Random, dialect: str) -> list[Any]:
    found = _pick(
        rng,
        [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)],
        lambda: uuid.UUID(int=rng.getrandbits(128)),
        5,
    )
    return found if dialect == "postgresql" else [str(v) for v in found]


def _canon_uuid(value: Any) -> Any:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return ("other", repr(value))


def _bits8(rng: random.Random, dialect: str) -> list[Any]:
    return _pick(rng, [b"\x00", b"\xff", b"\x01"], lambda: rng.randbytes(1))


def _canon_bit(value: Any) -> Any:
    """BIT(n) is read as the integer its bits spell (SQLAlchemy's reading of it)."""
    if isinstance(value, bytes):
        return int.from_bytes(value, "big")
    return value if isinstance(value, int) else ("other", repr(value))


_MARIA_TEXT = "VARCHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in [
        Kind("int", {d: "INTEGER" for d in DIALECTS}, _ints(32), _canon_int, key=True),
        Kind("bigint", {d: "BIGINT" for d in DIALECTS}, _ints(64), _canon_int, key=True),
        Kind("smallint", {d: "SMALLINT" for d in DIALECTS}, _ints(16), _canon_int),
        Kind(
            "uint64",
            {"mariadb": "BIGINT UNSIGNED", "postgresql": "NUMERIC(20, 0)", "sqlite": "INTEGER"},
            _uint64,
            _canon_int,
            sources=("mariadb",),
        ),
        Kind(
            "double",
            {"mariadb": "DOUBLE", "postgresql": "DOUBLE PRECISION", "sqlite": "REAL"},
            _doubles,
            _canon_double,
        ),
        Kind(
            "decimal",
            {d: "DECIMAL(65, 30)" for d in ("mariadb", "postgresql", "sqlite")},
            _decimals,
            _canon_decimal,
        ),
        Kind(
            "keydecimal",
            {d: "DECIMAL(20, 6)" for d in DIALECTS},
            _key_decimals,
            _canon_decimal,
            key=True,
        ),
        Kind(
            "text",
            {"mariadb": _MARIA_TEXT, "postgresql": "VARCHAR(250)", "sqlite": "TEXT"},
            _texts,
            _canon_text,
        ),
        Kind(
            "keytext",
            {"mariadb": _MARIA_TEXT, "postgresql": "VARCHAR(250)", "sqlite": "VARCHAR(250)"},
            _key_texts,
            _canon_text,
            key=True,
        ),
        Kind(
            "bytes",
            {"mariadb": "VARBINARY(250)", "postgresql": "BYTEA", "sqlite": "BLOB"},
            _bytes,
            _canon_bytes,
        ),
        Kind(
            "binary16",
            {"mariadb": "BINARY(16)", "postgresql": "BYTEA", "sqlite": "BLOB"},
            _bytes16,
            _canon_bytes,
            key=True,
        ),
        Kind(
            "datetime",
            {"mariadb": "DATETIME(6)", "postgresql": "TIMESTAMP(6)", "sqlite": "DATETIME"},
            _datetimes,
            _canon_datetime,
            key=True,
        ),
        Kind("date", {d: "DATE" for d in DIALECTS}, _dates, _canon_date, key=True),
        Kind(
            "timestamptz",
            {"postgresql": "TIMESTAMP(6) WITH TIME ZONE"},
            _instants,
            _canon_instant,
        ),
        Kind("time", {"mariadb": "TIME(6)"}, _durations, _canon_duration),
        Kind("year", {"mariadb": "YEAR"}, _year, _canon_int),
        Kind("bit", {"mariadb": "BIT(8)"}, _bits8, _canon_bit),
        Kind("bool", {d: "BOOLEAN" for d in DIALECTS}, _bools, _canon_bool),
        Kind(
            "json",
            {"mariadb": "JSON", "postgresql": "JSONB", "sqlite": "JSON"},
            _jsons,
            _canon_json,
            select={"postgresql": "CAST({c} AS TEXT)"},
        ),
        Kind(
            "uuid",
            {"postgresql": "UUID", "mariadb": "UUID", "sqlite": "CHAR(36)"},
            _uuids,
            _canon_uuid,
            key=True,
        ),
    ]
}

#: the type a column of a kind has in a target database that has no type of that kind
TARGET_FALLBACK: dict[tuple[str, str], str] = {
    ("timestamptz", "mariadb"): "DATETIME(6)",
    ("timestamptz", "sqlite"): "DATETIME",
    ("time", "postgresql"): "INTERVAL",
    ("year", "postgresql"): "SMALLINT",
    ("year", "sqlite"): "INTEGER",
    ("bit", "postgresql"): "BIGINT",
    ("bit", "sqlite"): "INTEGER",
}


_ZERO, _NEGATIVE_ZERO = struct.pack("<d", 0.0), struct.pack("<d", -0.0)


def documented(kind: Kind, target: str, value: Any) -> Any:
    """The canonical ``value`` as the target holds it after a documented conversion."""
    if kind.name == "double" and target != "postgresql" and value == _NEGATIVE_ZERO:
        return _ZERO  # MariaDB and SQLite hold no negative zero
    return value


def target_type(kind: Kind, dialect: str) -> str:
    return kind.ddl.get(dialect) or TARGET_FALLBACK[(kind.name, dialect)]


def reaches(kind: Kind, dialect: str) -> bool:
    """Whether a target database of ``dialect`` has a type for ``kind``."""
    return dialect in kind.ddl or (kind.name, dialect) in TARGET_FALLBACK
