"""The soak: ``python -m tests.fuzz --cases 50000 [--seed N] [--pair mariadb:postgresql]``.

Runs generated cases round-robin over every (source, target) pair, prints a line per pair with
its cases, exact and refused outcomes, crashes and rows compared, and the reproduction of every
failed case. Exits 1 when any case failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter, defaultdict

from .cases import PAIRS, generate
from .databases import Databases
from .oracle import Runner, Verdict


def run(cases: int, seed: int, pairs: list[tuple[str, str]], show: int = 5) -> list[str]:
    """Run ``cases`` cases from ``seed``; return the reproductions of the failed ones."""
    by_pair: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    failures: list[str] = []
    started = time.monotonic()
    with Databases() as dbs:
        runner = Runner(dbs)
        try:
            for n in range(cases):
                pair = pairs[n % len(pairs)]
                case = generate(n, seed * 1_000_003 + n, pair)
                try:
                    verdict = runner.run(case)
                except Exception as exc:
                    verdict = Verdict("failed", f"{type(exc).__name__}: {exc}")
                tally = by_pair[pair]
                tally["cases"] += 1
                tally[verdict.outcome] += 1
                tally["crashes"] += verdict.crashes
                tally["rows"] += verdict.rows
                if verdict.outcome == "failed":
                    failures.append(f"{case.describe()}\n  FAILED: {verdict.detail}")
                    if len(failures) <= show:
                        print(failures[-1], file=sys.stderr, flush=True)
        finally:
            runner.close()
    _report(by_pair, failures, time.monotonic() - started)
    return failures


def _report(
    by_pair: dict[tuple[str, str], Counter[str]], failures: list[str], seconds: float
) -> None:
    print(
        f"{'source -> target':36} {'cases':>7} {'exact':>7} {'refused':>8} {'failed':>7} "
        f"{'crashes':>8} {'rows':>8}"
    )
    total: Counter[str] = Counter()
    for (s, t), tally in sorted(by_pair.items()):
        label = f"{s} -> {t}" + (" (same db)" if s == t else "")
        print(
            f"{label:36} {tally['cases']:>7} {tally['exact']:>7} {tally['refused']:>8} "
            f"{tally['failed']:>7} {tally['crashes']:>8} {tally['rows']:>8}"
        )
        total.update(tally)
    print(
        f"{'all':36} {total['cases']:>7} {total['exact']:>7} {total['refused']:>8} "
        f"{total['failed']:>7} {total['crashes']:>8} {total['rows']:>8}   {seconds:.0f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pair", action="append", help="source:target, repeatable")
    parser.add_argument("--show", type=int, default=5, help="failures printed as they happen")
    parser.add_argument("--failures", help="write every failed case's reproduction to this file")
    args = parser.parse_args()
    logging.getLogger("rowferry").setLevel(logging.CRITICAL)  # each crash is logged as an error
    pairs = [tuple(p.split(":")) for p in args.pair] if args.pair else PAIRS
    failures = run(args.cases, args.seed, pairs, args.show)  # type: ignore[arg-type]
    if args.failures:
        with open(args.failures, "w", encoding="utf-8") as out:
            out.write("\n\n".join(failures) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
