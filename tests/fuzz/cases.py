"""One generated case, all of it drawn from one seed, and its reproduction as text."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .kinds import DIALECTS, KINDS, Kind, reaches, target_type

#: (source, target) dialects; equal names: one database for both sides
PAIRS = [(s, t) for s in DIALECTS for t in DIALECTS]
POINTS = ("after_read", "after_write", "before_commit", "after_commit")
_KEY_SHAPES = [
    ["int"],
    ["bigint"],
    ["int", "keytext"],
    ["keytext"],
    ["datetime"],
    ["date"],
    ["keydecimal"],
    ["uuid"],
    ["binary16"],
    ["bigint", "date"],
]
_FILTERABLE = ("int", "bigint", "smallint")


@dataclass
class Case:
    number: int
    seed: int
    source: str
    target: str
    key: list[tuple[str, Kind]]
    columns: list[tuple[str, Kind]]
    rows: list[tuple[Any, ...]]
    #: the filter as rowferry gets it, and with its parameters written in, for the oracle
    where: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    oracle_where: str | None = None
    chunk_size: int = 3
    pushdown: bool = False
    transform: bool = False
    unique_target: bool = True
    crash: tuple[str, int] | None = None
    max_chunks: int | None = None

    @property
    def same(self) -> bool:
        return self.source == self.target

    @property
    def all_columns(self) -> list[tuple[str, Kind]]:
        return [*self.key, *self.columns]

    @property
    def name(self) -> str:
        return f"f{self.number}"

    def describe(self) -> str:
        """The case as a person reproduces it."""
        cols = ", ".join(f"{n} {k.ddl[self.source]}" for n, k in self.all_columns)
        dst = ", ".join(f"{n} {target_type(k, self.target)}" for n, k in self.all_columns)
        lines = [
            f"case {self.number} (seed {self.seed}): {self.source} -> {self.target}"
            + (" (one database)" if self.same else ""),
            f"  source: CREATE TABLE {self.name}_src ({cols}, PRIMARY KEY "
            f"({', '.join(n for n, _ in self.key)}))",
            f"  target: CREATE TABLE {self.name}_dst ({dst})"
            + (" with the same primary key" if self.unique_target else ", no key"),
            f"  where={self.where!r} params={self.params!r}",
            f"  chunk_size={self.chunk_size} pushdown={self.pushdown} "
            f"transform={'identity' if self.transform else None} crash={self.crash} "
            f"max_chunks={self.max_chunks}",
            f"  rows ({len(self.rows)}):",
            *(f"    {row!r}" for row in self.rows),
        ]
        return "\n".join(lines)


def generate(number: int, seed: int, pair: tuple[str, str] | None = None) -> Case:
    rng = random.Random(seed)
    source, target = pair or rng.choice(PAIRS)
    shapes = [s for s in _KEY_SHAPES if all(KINDS[k].on(source) for k in s)]
    key = [(f"k{i}", KINDS[name]) for i, name in enumerate(rng.choice(shapes))]
    transform = rng.random() < 0.15
    usable = [k for k in KINDS.values() if k.on(source) and reaches(k, target)]
    if transform:  # a transform gets JSON parsed, and gives text back as JSON text
        usable = [k for k in usable if k.name != "json"]
    columns = [(f"c{i}", rng.choice(usable)) for i in range(rng.randint(1, 5))]
    rows = _rows(rng, source, key, columns, target)
    case = Case(number, seed, source, target, key, columns, rows)
    _filter(rng, case)
    case.chunk_size = rng.choice([1, 2, 3, 5, 7, 50])
    case.transform = transform
    case.pushdown = case.same and not case.transform and rng.random() < 0.5
    case.unique_target = rng.random() < 0.7
    if rng.random() < 0.5:
        case.crash = (rng.choice(POINTS), rng.randint(1, 4))
    if rng.random() < 0.3:
        case.max_chunks = rng.randint(1, 3)
    return case


def _rows(
    rng: random.Random,
    dialect: str,
    key: list[tuple[str, Kind]],
    columns: list[tuple[str, Kind]],
    target: str,
) -> list[tuple[Any, ...]]:
    pools = {name: kind.values(rng, dialect) for name, kind in [*key, *columns]}
    rows = []
    for _ in range(rng.randint(0, 25)):
        keys = [rng.choice(pools[name]) for name, _ in key]
        values = [None if rng.random() < 0.15 else rng.choice(pools[n]) for n, _ in columns]
        rows.append((*keys, *values))
    return rows


def _filter(rng: random.Random, case: Case) -> None:
    if rng.random() < 0.25:
        return
    numeric = [n for n, k in case.all_columns if k.name in _FILTERABLE]
    nullable = [n for n, _ in case.columns]
    if not numeric:
        column = rng.choice(nullable)
        case.where = case.oracle_where = rng.choice([f"{column} IS NOT NULL", f"{column} IS NULL"])
        return
    maker = _Filters(rng, numeric, nullable, case.name + "_src")
    rowferry_text, oracle_text = maker.condition(depth=rng.randint(0, 3))
    case.where, case.oracle_where, case.params = rowferry_text, oracle_text, maker.params


class _Filters:
    """Random conditions, each written twice: with ``:name`` parameters for rowferry, and with
    their values in the text for the oracle."""

    def __init__(self, rng: random.Random, numeric: list[str], nullable: list[str], table: str):
        self.rng, self.numeric, self.nullable, self.table = rng, numeric, nullable, table
        self.params: dict[str, Any] = {}

    def number(self) -> int:
        return self.rng.choice([0, 1, -1, 2**31 - 1, self.rng.randint(-(2**31), 2**31 - 1)])

    def value(self) -> tuple[str, str]:
        n = self.number()
        if self.rng.random() < 0.3:
            name = f"p{len(self.params)}"
            self.params[name] = n
            return f":{name}", str(n)
        return str(n), str(n)

    def condition(self, depth: int) -> tuple[str, str]:
        if depth <= 0:
            return self.atom()
        rng = self.rng
        choice = rng.random()
        if choice < 0.2:
            inner = self.condition(depth - 1)
            return f"NOT ({inner[0]})", f"NOT ({inner[1]})"
        left, right = self.condition(depth - 1), self.condition(depth - 1)
        op = rng.choice(["AND", "OR"])
        if rng.random() < 0.5:  # no parentheses: precedence is the database's
            return f"{left[0]} {op} {right[0]}", f"{left[1]} {op} {right[1]}"
        return f"({left[0]}) {op} ({right[0]})", f"({left[1]}) {op} ({right[1]})"

    def atom(self) -> tuple[str, str]:
        rng = self.rng
        column = rng.choice(self.numeric)
        a, b = self.value(), self.value()
        kind = rng.randrange(9)
        if kind == 0:
            return f"{column} > {a[0]}", f"{column} > {a[1]}"
        if kind == 1:
            return f"{column} <= {a[0]}", f"{column} <= {a[1]}"
        if kind == 2:
            values = [str(self.number()) for _ in range(rng.randint(1, 4))]
            return f"{column} IN ({', '.join(values)})", f"{column} IN ({', '.join(values)})"
        if kind == 3:
            name = f"p{len(self.params)}"
            values = [self.number() for _ in range(rng.randint(1, 4))]
            self.params[name] = values
            return f"{column} IN :{name}", f"{column} IN ({', '.join(map(str, values))})"
        if kind == 4:
            nullable = rng.choice(self.nullable)
            test = rng.choice(["IS NULL", "IS NOT NULL"])
            return f"{nullable} {test}", f"{nullable} {test}"
        if kind == 5:
            return (
                f"{column} BETWEEN {a[0]} AND {b[0]}",
                f"{column} BETWEEN {a[1]} AND {b[1]}",
            )
        if kind == 6:
            return (
                f"CASE WHEN {column} > {a[0]} THEN 1 ELSE 0 END = 1",
                f"CASE WHEN {column} > {a[1]} THEN 1 ELSE 0 END = 1",
            )
        if kind == 7:
            other = rng.choice(self.numeric)
            sub = f"SELECT s.{other} FROM {self.table} s WHERE s.{other} < "
            return f"{column} IN ({sub}{a[0]})", f"{column} IN ({sub}{a[1]})"
        return f"{column} = {a[0]}", f"{column} = {a[1]}"
