"""The speed benchmark suite of the snapshot job: every approach on the same data, same run.

``python -m bench.compare --orders 2700,100000,1000000 --servers mariadb,postgresql,sqlite
[--approaches naive,handmade,...] [--naive-cap 120] [--repeat N] [--warm] [--report PATH]`` builds
the reference workload once per server and size (a fresh database, dropped afterwards; SQLite in
/tmp), then runs each approach of bench/approaches.py on it in a process of its own (``python -m
bench.compare_one``; ``--repeat`` times, in turns with the others, naive once, the median run
reported with the range of the times), emptying the target and rowferry's state in between and
letting the server settle (bench/settle.py) before each. It records the wall time from connect to
finish measured in the child, the statements and commits it sent, the child's peak RSS (``wait4``
in bench/launcher.py, which starts the children), and whether the result is correct
(bench/check.py), then writes the report (bench/compare_report.py, bench/compare_targets.py) to
``bench/compare-report.md`` or ``--report``.

``naive`` and ``naive-1ms`` stop at ``--naive-cap`` seconds: their row gives the snapshots done
and the rate over them, and only those snapshots are checked. ``naive-1ms`` goes through
``bench.latency.ThreadProxy``, calibrated to add 1 ms per round trip and run in this process so
that it does not weigh on the child's time or memory; SQLite has no network (n/a).

``--warm`` times each approach's second run in its process instead of its first (see
bench/compare_one.py): what a warm Lambda function or a worker pays for its later trips.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import check
from bench.approaches import APPROACHES, CAPPED, LATENCY_MS
from bench.compare_report import Setup, render, server_settings
from bench.compare_result import Result
from bench.latency import ThreadProxy
from bench.reset import start_over
from bench.settle import settle
from harness import reference
from harness.databases import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
REPORT = Path(__file__).with_name("compare-report.md")
SERVERS = ("mariadb", "postgresql", "sqlite")


class Launcher:
    """The small process (bench/launcher.py) that starts each child and reads its peak RSS."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.launcher"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)

    def run(
        self, approach: str, url: str, cap: float | None, timeout: float, *, warm: bool = False
    ) -> tuple[dict[str, Any], float]:
        """Run ``bench.compare_one``; its JSON line and its peak RSS in MB (10^6 bytes)."""
        argv = [sys.executable, "-m", "bench.compare_one", approach, url]
        if cap is not None:
            argv += ["--cap", str(cap)]
        if warm:
            argv.append("--warm")
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "timeout": timeout}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        lines = answer["stdout"].strip().splitlines()
        if answer["returncode"] != 0 or not lines:
            tail = " / ".join(answer["stderr"].strip().splitlines()[-3:])
            reason = "killed at the timeout" if answer["returncode"] < 0 else tail
            return {"status": "error", "error": f"exit {answer['returncode']}: {reason}"}, 0.0
        return json.loads(lines[-1]), answer["maxrss_kb"] * 1024 / 1e6  # ru_maxrss: KiB


@contextmanager
def routed(url: str, server: str, approach: str, setup: Setup) -> Iterator[str]:
    """``url``, or ``url`` through a latency proxy for the approaches that want one."""
    if approach not in LATENCY_MS:
        yield url
        return
    delay = setup.proxy_delay(server, url, LATENCY_MS[approach])
    parsed = sa.make_url(url)
    with ThreadProxy(parsed.host or "127.0.0.1", parsed.port or 0, delay_ms=delay) as proxy:
        yield proxy.route(url)


def analyze(url: str) -> None:
    """Give the planner statistics of the freshly loaded tables, as a live database has them
    (this machine's PostgreSQL runs without autovacuum: without this, PostgreSQL plans the
    chunked approaches' queries blind and they run up to 4x slower at 1,000,000 orders)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if engine.dialect.name == "mysql":
            tables = ", ".join(sa.inspect(conn).get_table_names())
            conn.exec_driver_sql(f"ANALYZE TABLE {tables}").all()
        else:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def measure(
    server: str,
    orders: int,
    approach: str,
    url: str,
    expected: dict[int, bytes],
    setup: Setup,
    launcher: Launcher,
) -> Result:
    args = setup.args
    result = Result(server=server, orders=orders, approach=approach, qualifying=len(expected))
    if approach in LATENCY_MS and server == "sqlite":
        result.status = "n/a"
        return result
    start_over(url)
    waited = settle(url)
    setup.settled.append((server, orders, approach, waited.seconds, waited.detail))
    cap = args.naive_cap if approach in CAPPED else None
    with routed(url, server, approach, setup) as child_url:
        out, result.rss_mb = launcher.run(approach, child_url, cap, args.timeout, warm=args.warm)
    result.status = out["status"]
    result.error = out.get("error")
    if result.status == "ok":
        result.seconds = out["seconds"]
        result.statements, result.direct = out["statements"], out["direct"]
        result.commits = out["commits"]
        result.capped_at = cap if out["capped"] else None
        result.verdict = check.check(url, orders, expected, capped=bool(out["capped"]))
    return result


def run_size(server: str, orders: int, setup: Setup, launcher: Launcher) -> list[Result]:
    args = setup.args
    url = create_database(server, Path(tempfile.gettempdir()))
    try:
        started = time.perf_counter()
        reference.build(url, orders=orders)
        analyze(url)
        expected = check.expected_digests(url, orders)
        print(
            f"{server} {orders:,}: built and expected in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        setup.servers.setdefault(server, server_settings(url))
        runs: dict[str, list[Result]] = {approach: [] for approach in args.approaches}
        for turn in range(args.repeat):  # in turns, so that a slow spell weighs on every one
            for approach in args.approaches:
                if turn and approach in CAPPED:
                    continue
                result = measure(server, orders, approach, url, expected, setup, launcher)
                print(result.line(), flush=True)
                runs[approach].append(result)
        return [_median(found) for found in runs.values()]
    finally:
        drop_database(url)
        if server == "sqlite":
            Path(sa.make_url(url).database or "").unlink(missing_ok=True)


def _median(runs: list[Result]) -> Result:
    """The run of median time (the lower one of an even number) with every run's time; a run
    that failed or was wrong, if there is one, so that it shows."""
    failed = [r for r in runs if not r.ok]
    if failed:
        return failed[0]
    chosen = sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]
    chosen.runs = [r.seconds for r in runs]
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", default="2700", help="comma-separated workload sizes")
    parser.add_argument("--servers", default=",".join(SERVERS), help="mariadb,postgresql,sqlite")
    parser.add_argument("--approaches", default=",".join(APPROACHES), help="default: all")
    parser.add_argument("--naive-cap", type=float, default=120.0, help="seconds (naive only)")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds per approach")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each approach (naive: one); median shown"
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="time each approach's second run in its process, on the engine of its first, "
        "untimed one (a warm Lambda function, a worker)",
    )
    args = parser.parse_args(argv)
    args.orders = [int(n.replace("_", "")) for n in args.orders.split(",")]
    args.servers = args.servers.split(",")
    args.approaches = args.approaches.split(",")
    for kind, values, allowed in (
        ("server", args.servers, SERVERS),
        ("approach", args.approaches, tuple(APPROACHES)),
    ):
        for value in values:
            if value not in allowed:
                parser.error(f"unknown {kind} {value!r} (choose from {', '.join(allowed)})")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup = Setup.now(args)
    launcher = Launcher()
    results: list[Result] = []
    try:
        for server in args.servers:
            for orders in args.orders:
                results += run_size(server, orders, setup, launcher)
                setup.finish()
                args.report.write_text(render(setup, results))  # so far, if a later size fails
    finally:
        launcher.close()
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
