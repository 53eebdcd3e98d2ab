"""The speed targets against the results of bench/compare.py: ratios, and pass/fail per target.

Speed ratios are "the other's seconds / this one's seconds" (above 1: faster), over complete and
correct runs only. A target measured at a size it is not about (the speed target is about
100,000 and 1,000,000 orders) is shown as an indication, not as a verdict.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass

from bench.compare_result import Result

SPEED_SIZES = (100_000, 1_000_000)
PRODUCTION = 2_700
ROWFERRY = ("rowferry", "rowferry-pushdown", "rowferry-mysqlclient")
#: the Python-transform path, on the default driver and on the optional C driver
PYTHON_PATH = ("rowferry", "rowferry-mysqlclient")
NOT_TARGET_SIZE = "not a target size"
NO_START_UP = "without the statements of the start-up"


@dataclass(frozen=True)
class Check:
    target: str
    server: str
    orders: int
    measured: str
    passed: bool | None  # None: not measured
    indication: str = ""  # why the verdict is only an indication (e.g. not a target size)

    def row(self) -> str:
        if self.passed is None:
            verdict = "not measured"
        else:
            verdict = "pass" if self.passed else "**FAIL**"
            if self.indication:
                verdict = f"{verdict.strip('*').lower()} (indication only: {self.indication})"
        return f"| {self.target} | {self.server} | {self.orders:,} | {self.measured} | {verdict} |"


def find(results: list[Result], server: str, orders: int, approach: str) -> Result | None:
    for r in results:
        if (r.server, r.orders, r.approach) == (server, orders, approach):
            return r
    return None


def best_limit(results: list[Result], server: str, orders: int) -> Result | None:
    """The faster of ``limit`` and ``limit-chunked`` (complete and correct runs only)."""
    found = [find(results, server, orders, a) for a in ("limit", "limit-chunked")]
    return min((r for r in found if r and r.complete), key=lambda r: r.seconds, default=None)


def speedup(this: Result | None, other: Result | None) -> float | None:
    """How many times faster ``this`` ran than ``other`` (None unless both are complete)."""
    if this is None or other is None or not (this.complete and other.complete):
        return None
    return other.seconds / this.seconds


def turn_by_turn(this: Result | None, other: Result | None) -> str:
    """``other``'s seconds / ``this`` one's in each turn (the approaches run in turns, so a slow
    spell of the machine weighs on both of a turn): the median of those ratios and their range,
    when both ran more than once; else empty."""
    if this is None or other is None or not (this.complete and other.complete):
        return ""
    if len(this.runs) < 2 or len(this.runs) != len(other.runs):
        return ""
    each = [o / t for t, o in zip(this.runs, other.runs, strict=True)]
    return f"{statistics.median(each):.2f}x ({min(each):.2f}–{max(each):.2f})"


def why_not(result: Result | None) -> str:
    if result is None:
        return "not run"
    if result.status != "ok":
        return result.status
    return "capped" if result.capped_at is not None else "not correct"


def times(value: float | None, this: Result | None, other: Result | None = None) -> str:
    """A ratio, or why there is none: this side's reason first, else the other side's."""
    if value is not None:
        return f"{value:.2f}x"
    if other is not None and this is not None and this.complete and not other.complete:
        return f"{other.approach}: {why_not(other)}"
    if this is not None and this.complete and other is None:
        return "no reference run"
    return why_not(this)


def sizes(results: list[Result]) -> list[tuple[str, int]]:
    return list(dict.fromkeys((r.server, r.orders) for r in results))


def ratios(results: list[Result]) -> list[str]:
    lines = [
        "## Ratios (speed: the other's seconds / this one's seconds; above 1 is faster)",
        "",
        "| server | orders | rowferry / handmade | best limit | rowferry pushdown / best limit "
        "| the same, turn by turn: median (range) |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for server, orders in sizes(results):
        rowferry = find(results, server, orders, "rowferry")
        pushdown = find(results, server, orders, "rowferry-pushdown")
        best = best_limit(results, server, orders)
        handmade = find(results, server, orders, "handmade")
        vs_handmade = speedup(rowferry, handmade)
        best_text = f"{best.approach}, {best.seconds:.2f} s" if best else "not measured"
        lines.append(
            f"| {server} | {orders:,} | {times(vs_handmade, rowferry, handmade)} | {best_text} | "
            f"{times(speedup(pushdown, best), pushdown, best)} | {turn_by_turn(pushdown, best)} |"
        )
    return lines


def speed_vs_handmade(results: list[Result]) -> Iterator[Check]:
    for server, orders in sizes(results):
        if server == "sqlite":
            continue
        for approach in PYTHON_PATH:
            rowferry = find(results, server, orders, approach)
            if rowferry is None or rowferry.status == "not available":
                continue
            handmade = find(results, server, orders, "handmade")
            ratio = speedup(rowferry, handmade)
            passed = None if ratio is None else ratio >= 1.5
            indication = "" if orders in SPEED_SIZES else NOT_TARGET_SIZE
            name = f"{approach} ≥ 1.5x handmade"
            yield Check(name, server, orders, times(ratio, rowferry, handmade), passed, indication)


def pushdown_vs_limit(results: list[Result]) -> Iterator[Check]:
    for server, orders in sizes(results):
        pushdown = find(results, server, orders, "rowferry-pushdown")
        ratio = speedup(pushdown, best_limit(results, server, orders))
        passed = None if ratio is None else ratio >= 0.9
        yield Check("pushdown ≥ 0.9x best limit", server, orders, times(ratio, pushdown), passed)


def production(results: list[Result]) -> Iterator[Check]:
    for approach in ROWFERRY:
        r = find(results, "mariadb", PRODUCTION, approach)
        if r is not None and r.status == "not available":
            continue
        name = f"{approach}: 2,700 orders < 0.3 s, connect to finish"
        if r is None or not r.complete:
            yield Check(name, "mariadb", PRODUCTION, why_not(r), None)
        else:
            yield Check(name, "mariadb", PRODUCTION, f"{r.seconds:.2f} s", r.seconds < 0.3)


def memory(results: list[Result]) -> Iterator[Check]:
    for r in results:
        if r.approach in ROWFERRY and r.complete:
            measured = f"{r.rss_mb:.0f} MB"
            yield Check(
                f"{r.approach}: peak RSS < 150 MB", r.server, r.orders, measured, r.rss_mb < 150
            )
    for approach in ROWFERRY:
        for server in dict.fromkeys(r.server for r in results):
            done = [r for r in results if (r.server, r.approach) == (server, approach)]
            done = sorted((r for r in done if r.complete), key=lambda r: r.orders)
            if len(done) < 2:
                continue
            small, large = done[-2], done[-1]
            growth = large.rss_mb / small.rss_mb - 1
            name = f"{approach}: peak RSS at {large.orders:,} ≤ +10 % of {small.orders:,}"
            indication = "" if (small.orders, large.orders) == SPEED_SIZES else NOT_TARGET_SIZE
            yield Check(name, server, large.orders, f"{growth:+.1%}", growth <= 0.10, indication)


def statements(results: list[Result]) -> Iterator[Check]:
    """At most 12 statements per 1,000 orders (the targets' measure; the results table counts per
    1,000 snapshots) on the Python-transform path, including those sent through the driver's own
    cursor (COPY on PostgreSQL, the multi-row INSERTs on MySQL)."""
    name = "rowferry: ≤ 12 statements/1,000 orders"
    done = [r for r in results if r.approach == "rowferry" and r.complete]
    for r in done:
        total = (r.statements + r.direct) * 1000 / r.orders
        measured = f"{total:.1f}" + (" (driver-level included)" if r.direct else "")
        yield Check(name, r.server, r.orders, measured, total <= 12)
    for server in dict.fromkeys(r.server for r in done):
        runs = sorted((r for r in done if r.server == server), key=lambda r: r.orders)
        if len(runs) < 2:
            continue
        small, large = runs[0], runs[-1]
        extra = (large.statements + large.direct) - (small.statements + small.direct)
        per_k = extra * 1000 / (large.orders - small.orders)
        marginal = f"{name} (per extra order, {small.orders:,} → {large.orders:,})"
        yield Check(marginal, server, large.orders, f"{per_k:.1f}", per_k <= 12, NO_START_UP)


def targets(results: list[Result]) -> list[str]:
    run = {r.orders for r in results}
    missing = [n for n in SPEED_SIZES if n not in run]
    note = (
        "Not run here: "
        + " and ".join(f"{n:,}" for n in missing)
        + " orders, the sizes of the speed and memory-growth targets; the rows at other "
        "sizes are indications."
        if missing
        else "All target sizes were run."
    )
    checks = [
        *speed_vs_handmade(results),
        *pushdown_vs_limit(results),
        *production(results),
        *memory(results),
        *statements(results),
    ]
    return [
        "## Targets",
        "",
        note,
        "",
        "| target | server | orders | measured | verdict |",
        "|---|---|---:|---:|---|",
        *[c.row() for c in checks],
    ]
