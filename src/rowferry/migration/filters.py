"""A migration's filter (``where``): checked for what it may hold, and bound as one condition.

The filter is SQL text that rowferry joins to its own conditions (the keyset predicate of each
chunk, a chunk's key range), so it is always sent inside parentheses of its own, closed on a
line of their own: ``a = 1 OR b = 2`` stays one condition, and a trailing ``-- comment`` ends
before the closing parenthesis. rowferry orders and limits every chunk itself, so a filter that
carries a clause of a whole statement at its top level (``ORDER BY``, ``LIMIT``, ``OFFSET``,
``GROUP BY``, ``HAVING``, ``UNION``, ``FOR UPDATE``, or a ``;``) is refused before
anything runs; inside a subquery's parentheses such clauses are the subquery's own and allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from rowferry.errors import ConfigError

#: clauses of a whole statement, refused at the filter's top level
_STATEMENT_CLAUSES = re.compile(
    r"\b(ORDER\s+BY|GROUP\s+BY|LIMIT|OFFSET|HAVING|UNION|INTERSECT|EXCEPT|FOR\s+UPDATE"
    r"|FOR\s+SHARE)\b",
    re.IGNORECASE,
)
#: a quoted string, a quoted name, a comment, a parenthesis, or any other run of text
_TOKEN = re.compile(
    r"""'(?:[^'\\]|''|\\.)*'?        # string literal ('' and \' escapes)
      |"(?:[^"]|"")*"?              # quoted name (SQL standard)
      |`(?:[^`]|``)*`?              # quoted name (MySQL)
      |--[^\n]*|\#[^\n]*            # comment to the end of the line
      |/\*.*?(?:\*/|$)              # block comment
      |[()]
      |[^'"`\-#/()]+|[\-#/]""",
    re.VERBOSE | re.DOTALL,
)


def _top_level(where: str) -> Iterator[str]:
    """The pieces of ``where`` outside strings, quoted names, comments and parentheses."""
    depth = 0
    for match in _TOKEN.finditer(where):
        token = match.group(0)
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and token[0] not in "'\"`#" and token[:2] not in ("--", "/*"):
            yield token
        if depth < 0:
            raise ConfigError(f"the filter {where!r} closes a parenthesis it did not open")


def check(migration: str, where: str) -> None:
    """Refuse a filter that is not one condition (see the module's docstring)."""
    top = " ".join(_top_level(where))
    if ";" in top:
        raise ConfigError(
            f"migration {migration!r}: the filter {where!r} holds ';': it must be one condition, "
            "not statements"
        )
    found = _STATEMENT_CLAUSES.search(top)
    if found:
        clause = " ".join(found.group(1).upper().split())
        raise ConfigError(
            f"migration {migration!r}: the filter {where!r} carries {clause}: it must be a "
            "condition only (rowferry orders and sizes every chunk by the key itself); remove "
            f"{clause}, or move it into a subquery"
        )


def bind(where: str, params: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    """The filter as one parenthesized condition with its parameters bound (lists and tuples
    expand to ``IN`` lists)."""
    clause = sa.text(f"(\n{where}\n)")
    binds: list[sa.BindParameter[Any]] = []
    for name in clause._bindparams:
        value = params[name]
        expanding = isinstance(value, list | tuple | set | frozenset)
        binds.append(sa.bindparam(name, list(value) if expanding else value, expanding=expanding))
    return sa.and_(clause.bindparams(*binds))
