"""What happens to each type of value on its way from one database to another.

:data:`TABLE` says, for each kind of source column and each target database, whether values
arrive **exact**, **converted** (and how), or whether the migration is **refused** before its
first write. ``docs/type-fidelity.md`` is rendered from it (:func:`markdown`; a test keeps the
two equal), and :func:`check` applies its refusals to a migration's copied columns. Values a
target rejects one by one (a string too long, a NaN where the target has none) are quarantined
with the target's reason; they are not listed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa

from rowferry.dialects.base import Dialect
from rowferry.errors import SchemaError
from rowferry.migration.shapes import Copy, Snapshot
from rowferry.migration.spec import Migration

#: significant digits every double spells exactly (SQLite holds decimals as doubles)
DOUBLE_DIGITS = 15


class Rule(NamedTuple):
    source: str
    target: str
    outcome: str  # exact, converted, refused
    how: str


TABLE: tuple[Rule, ...] = (
    Rule(
        "integers (all sizes, MariaDB unsigned too)",
        "any",
        "exact",
        "a value the target column cannot hold (BIGINT UNSIGNED past 2^63-1 into SQLite or "
        "a BIGINT) is quarantined",
    ),
    Rule(
        "DOUBLE, DOUBLE PRECISION, REAL (64-bit)",
        "any",
        "exact",
        "bit for bit; MariaDB holds no negative zero (-0.0 becomes 0) and no NaN or "
        "infinity (such rows are quarantined); SQLite stores NaN as NULL, so NaN into SQLite "
        "is quarantined",
    ),
    Rule(
        "FLOAT / REAL (32-bit)",
        "any",
        "converted",
        "read as the driver's double of the stored value",
    ),
    Rule(
        "DECIMAL / NUMERIC",
        "MariaDB, PostgreSQL",
        "exact",
        "a value past the target's precision is quarantined",
    ),
    Rule(
        "DECIMAL / NUMERIC of more than 15 digits (or none declared)",
        "SQLite",
        "refused",
        "SQLite keeps 15 significant digits of a number in a column of numeric affinity; "
        "declare the target column TEXT to keep every digit",
    ),
    Rule(
        "DECIMAL / NUMERIC of SQLite",
        "any",
        "converted",
        "SQLite holds them as integers, doubles or text: read as the decimal of the integer, "
        "the shortest decimal of the double, or the text",
    ),
    Rule(
        "CHAR, VARCHAR, TEXT",
        "any",
        "exact",
        "a character the target's character set cannot hold, or NUL into PostgreSQL, is "
        "quarantined; trailing spaces are kept",
    ),
    Rule(
        "BINARY, VARBINARY, BLOB, BYTEA",
        "any",
        "exact",
        "bytes into a column that is not binary are quarantined",
    ),
    Rule("BIT(n) of MariaDB", "any", "converted", "read as the integer its bits spell"),
    Rule("DATE", "any", "exact", "SQLite stores it as ISO text (YYYY-MM-DD)"),
    Rule(
        "DATETIME, TIMESTAMP (without time zone)",
        "any",
        "exact",
        "microseconds kept; SQLite stores ISO text",
    ),
    Rule(
        "DATETIME/DATE key of SQLite",
        "any",
        "converted",
        "read as the text SQLite holds, so that chunks follow SQLite's own order; the target "
        "parses it (MariaDB, PostgreSQL) or keeps it (SQLite)",
    ),
    Rule(
        "TIMESTAMP WITH TIME ZONE of PostgreSQL",
        "MariaDB, SQLite, TIMESTAMP of PostgreSQL",
        "converted",
        "the instant's UTC time, without its zone, whatever the sessions' time zones",
    ),
    Rule(
        "DATETIME, TIMESTAMP (without time zone)",
        "TIMESTAMP WITH TIME ZONE of PostgreSQL",
        "converted",
        "taken as a time in the target session's time zone (PostgreSQL's own rule)",
    ),
    Rule(
        "TIME of MariaDB (-838:59:59 to 838:59:59)",
        "MariaDB, PostgreSQL (INTERVAL)",
        "exact",
        "read as a duration, never wrapped at 24 hours",
    ),
    Rule("YEAR of MariaDB", "any", "converted", "an integer"),
    Rule("BOOLEAN", "any", "converted", "1 and 0 where the target has no boolean"),
    Rule(
        "JSON, JSONB",
        "any",
        "exact",
        "the document's text as the source gives it (PostgreSQL's jsonb gives its own "
        "normal form); numbers keep every digit",
    ),
    Rule(
        "a value of another type than the SQLite target column's (a datetime into a column "
        "CREATE TABLE ... AS SELECT declared NUM)",
        "SQLite",
        "exact",
        "written as SQLAlchemy writes the value's own type (a datetime as the text a SQLite "
        "source column held); SQLite keeps any value in any column",
    ),
    Rule(
        "a JSON document that is a bare number",
        "JSON column of SQLite",
        "converted",
        "held as SQLite holds it: an integer, or a double (numeric affinity); a number neither "
        "holds exactly (past 64 bits, more digits than a double) is quarantined: declare the "
        "column TEXT to keep every digit",
    ),
    Rule(
        "UUID",
        "any",
        "converted",
        "its 36-character text where the target has no uuid type; MariaDB's UUID refuses "
        "some values (quarantined)",
    ),
    Rule(
        "FLOAT, REAL or DOUBLE as a key",
        "any",
        "refused",
        "floating-point keys are not compared exactly: choose an exact key",
    ),
    Rule(
        "DECIMAL / NUMERIC as a key of SQLite",
        "any",
        "refused",
        "SQLite holds and compares them as doubles, text or integers: choose an INTEGER or "
        "TEXT key",
    ),
)


def markdown() -> str:
    """:data:`TABLE` as the Markdown table of ``docs/type-fidelity.md``."""
    lines = ["| source column | target | outcome | how |", "|---|---|---|---|"]
    lines += [f"| {r.source} | {r.target} | {r.outcome} | {r.how} |" for r in TABLE]
    return "\n".join(lines) + "\n"


def copied_columns(migration: Migration, source: sa.Table) -> Mapping[str, str]:
    """``{target column: source column}`` of the columns copied as they are."""
    shape = migration.transform
    if shape is None:
        return {c: c for c in source.c.keys()}  # noqa: SIM118
    if isinstance(shape, Copy | Snapshot):
        return shape.columns
    return {}


def check(migration: Migration, source: sa.Table, target: sa.Table, dialect: Dialect) -> None:
    """Refuse, before any write, copied columns whose values the target would change."""
    for to, frm in copied_columns(migration, source).items():
        if frm in source.c and to in target.c:
            _check_decimals(migration, source.c[frm], target.c[to], dialect)


def _check_decimals(
    migration: Migration, frm: sa.Column[Any], to: sa.Column[Any], dialect: Dialect
) -> None:
    """A decimal column of more digits than a double keeps, into a column that holds numbers
    as doubles (SQLite's of numeric affinity)."""
    kind = frm.type  # a SQLite source's decimals are read as the doubles it holds: not here
    if not isinstance(kind, sa.Numeric) or isinstance(kind, sa.Float):
        return
    digits = kind.precision
    if digits is not None and digits <= DOUBLE_DIGITS:
        return
    if not dialect.rounds_numbers(to.type):
        return
    declared = f"{digits} digits" if digits is not None else "no declared precision"
    raise SchemaError(
        f"migration {migration.name!r}: column {frm.name!r} is {kind} ({declared}), but "
        f"target column {to.name!r} holds numbers as doubles, which keep "
        f"{DOUBLE_DIGITS} significant digits: declare {to.name!r} TEXT to keep every digit, "
        "or map it from a narrower column"
    )
