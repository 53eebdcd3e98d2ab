"""The conflict policy on an ``INSERT ... SELECT``: the dialect's own clause, as text.

Each dialect writes its conflict clause once
(:meth:`rowferry.dialects.base.Dialect.conflict_clause`: ``ON CONFLICT ... DO NOTHING`` or
``DO UPDATE``, or MySQL's ``ON DUPLICATE KEY UPDATE``). The Python path appends it to its
``INSERT ... VALUES``; pushdown appends the same text to its ``INSERT ... SELECT`` through
:class:`InsertWithClause`, a statement SQLAlchemy compiles (and caches) like the insert it wraps, so
both paths follow one policy, written in one place.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal


class InsertWithClause(sa.Insert):
    """``INSERT ... <clause>``: an insert followed by a conflict clause of the dialect's."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy declares it a list)
        *sa.Insert._traverse_internals,
        ("clause", InternalTraversal.dp_string),
    ]

    def __init__(self, table: sa.Table, clause: str) -> None:
        super().__init__(table)
        self.clause = clause


@compiles(InsertWithClause)
def _render(element: InsertWithClause, compiler: SQLCompiler, **kw: Any) -> str:
    insert: str = cast(Any, compiler).visit_insert(element, **kw)  # SQLAlchemy's, untyped
    return insert + element.clause
