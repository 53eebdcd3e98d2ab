"""Table and column names with spaces, mixed case or reserved words work (quoted by the dialect)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

import rowferry
from rowferry import HasMany, Migration, Target


def _schema(meta: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    parents = sa.Table(
        "Order Lines",
        meta,
        sa.Column("Select", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("Group Name", sa.String(50)),
        sa.Column("order", sa.String(20)),
    )
    children = sa.Table(
        "user",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("Line Ref", sa.Integer, index=True),
        sa.Column("where", sa.String(20)),
    )
    target = sa.Table(
        "Copied Lines",
        meta,
        sa.Column("Select", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("Group Name", sa.String(50)),
        sa.Column("order", sa.String(500)),
    )
    return parents, children, target


def _describe(row: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
    kids = ",".join(child["where"] for child in related["the users"])
    return {"Select": row["Select"], "Group Name": row["Group Name"], "order": kids}


def test_quoted_names_in_source_relation_filter_and_target(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    meta = sa.MetaData()
    parents, children, target = _schema(meta)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            parents.insert(),
            [
                {"Select": i, "Group Name": f"g{i % 3}", "order": "asc" if i % 2 else "desc"}
                for i in range(1, 21)
            ],
        )
        conn.execute(
            children.insert(),
            [{"id": i, "Line Ref": 1 + i % 20, "where": f"w{i}"} for i in range(1, 41)],
        )
    quote = engine.dialect.identifier_preparer.quote
    migration = Migration(
        name="quoted",
        source="Order Lines",
        where=f"{quote('order')} = :o",
        params={"o": "asc"},
        relations={"the users": HasMany("user", foreign_key="Line Ref", order_by="id")},
        transform=_describe,
        target=Target("Copied Lines", unique_key=["Select"], on_conflict="update"),
    )
    assert rowferry.run(migration, engine, chunk_size=3).done
    with engine.connect() as conn:
        copied = conn.execute(sa.select(target).order_by(target.c["Select"])).all()
    engine.dispose()
    assert [r[0] for r in copied] == list(range(1, 21, 2))
    assert copied[0] == (1, "g1", "w20,w40")
