"""The Lambda proof at full size: the reference workload through the Lambda simulator.

    python -m bench.lambda_proof [--orders 100000] [--servers mariadb,postgresql]
                                 [--latency-ms 0,20] [--timeout 30] [--memory 1024]
                                 [--safety-margin 3] [--chunk-size 1000]

For each server it creates a database on the local server (``ROWFERRY_TEST_MYSQL_URL``,
``ROWFERRY_TEST_PG_URL``, as the tests do), builds the reference workload, and for each latency
runs the order-history migration through :func:`rowferry.cli.simulate.simulate` until it is done:
every invocation a fresh process with a fake Lambda context, SIGKILLed at the timeout, its
address space capped at the memory limit. With a latency, the handler reaches the server
through :class:`rowferry.aws.latency_proxy.LatencyProxy`, which delays every packet by that many
milliseconds in each direction. After each run every snapshot is compared, field by field,
with one computed independently from whole-table reads (exactly once: none missing, none
duplicated, none different); then the target is emptied for the next run.

It writes ``bench/lambda-report.md`` and exits with status 1 if an invocation was killed by
the timeout, a full invocation used less than 80 % of its budget, or a snapshot was wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from harness import reference
from harness.databases import create_database, drop_database
from rowferry.aws.latency_proxy import LatencyProxy
from rowferry.cli.simulate import Limits, Simulation, render, simulate
from rowferry.demo import order_history
from rowferry.state import store

REPORT = Path(__file__).with_name("lambda-report.md")
MIGRATION = "rowferry.demo.order_history:migration"


@dataclass
class Run:
    server: str
    latency_ms: float
    kill: dict[int, float]
    sim: Simulation
    committed: list[int]  # rows each invocation committed, read from rowferry_state after it
    seconds: float
    snapshots: int
    expected: int
    missing: int
    different: int
    extra: int

    @property
    def label(self) -> str:
        kills = ", ".join(f"invocation {n} SIGKILLed at {s:g} s" for n, s in self.kill.items())
        return f"{self.server}{' (' + kills + ')' if kills else ''}"

    @property
    def full_budget_used(self) -> list[float]:
        return [
            i.budget_used
            for i in self.sim.invocations
            if i.status == "more" and i.budget_used is not None
        ]

    @property
    def ok(self) -> bool:
        return (
            self.sim.done
            and not self.sim.killed_by_timeout
            and all(u >= 0.8 for u in self.full_budget_used)
            and self.missing == self.different == self.extra == 0
        )


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    limits = Limits(timeout=args.timeout, memory_mb=args.memory)
    runs: list[Run] = []
    versions: list[str] = []
    started = time.monotonic()
    for server in args.servers.split(","):
        url = create_database(server, Path(tempfile.mkdtemp(prefix="rowferry-proof-")))
        try:
            t0 = time.monotonic()
            stats = reference.build(url, orders=args.orders)
            print(f"{server}: built {stats.orders:,} orders in {time.monotonic() - t0:.1f} s")
            expected = reference.expected_snapshots(url)
            versions.append(_version(url))
            plans = [(float(x), {}) for x in args.latency_ms.split(",")]
            if args.kill:
                number, _, seconds = args.kill.partition(":")
                plans.append((0.0, {int(number): float(seconds)}))
            for latency, kill in plans:
                runs.append(_run(server, url, latency, kill, limits, args, expected))
                reference.start_over(url)
        finally:
            drop_database(url)
    REPORT.write_text(_report(runs, versions, args, limits, time.monotonic() - started))
    print(f"wrote {REPORT}")
    return 0 if runs and all(r.ok for r in runs) else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lambda_proof")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--servers", default="mariadb,postgresql")
    parser.add_argument("--latency-ms", default="0,20", help="comma-separated, one run each")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--memory", type=int, default=1024)
    parser.add_argument("--safety-margin", type=float, default=3.0)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument(
        "--kill", default="1:15", help="N:SECONDS: one more run, SIGKILL invocation N ('' no)"
    )
    return parser.parse_args(argv)


def _run(
    server: str,
    url: str,
    latency: float,
    kill: dict[int, float],
    limits: Limits,
    args: argparse.Namespace,
    expected: dict[int, Any],
) -> Run:
    env = {
        "ROWFERRY_MIGRATION": MIGRATION,
        "ROWFERRY_SAFETY_MARGIN": str(args.safety_margin),
        "ROWFERRY_CHUNK_SIZE": str(args.chunk_size),
    }

    committed: list[int] = []

    def progress(inv: Any) -> None:
        committed.append(_rows_done(url) - sum(committed))
        used = "-" if inv.budget_used is None else f"{100 * inv.budget_used:.0f} %"
        print(
            f"  {server} +{latency:g} ms{' (kill)' if kill else ''}: "
            f"invocation {inv.number} {inv.status}, "
            f"{committed[-1]:,} rows committed in {inv.seconds:.1f} s, budget used {used}, "
            f"peak {inv.peak_rss_mb or 0:.0f} MB{', KILLED' if inv.killed else ''}",
            flush=True,
        )

    t0 = time.monotonic()
    if latency:
        server_url = sa.make_url(url)
        with LatencyProxy(server_url.host or "127.0.0.1", server_url.port or 0, latency) as p:
            env["ROWFERRY_SOURCE"] = p.route(url)
            sim = simulate(env, limits, kill=kill, on_invocation=progress)
    else:
        env["ROWFERRY_SOURCE"] = url
        sim = simulate(env, limits, kill=kill, on_invocation=progress)
    seconds = time.monotonic() - t0
    found = reference.snapshots(url)  # fails on a duplicate order id
    missing = len(set(expected) - set(found))
    extra = len(set(found) - set(expected))
    different = sum(1 for k, v in found.items() if k in expected and expected[k] != v)
    return Run(
        server,
        latency,
        kill,
        sim,
        committed,
        seconds,
        len(found),
        len(expected),
        missing,
        different,
        extra,
    )


def _rows_done(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = store.read(conn, order_history.migration.name) if store.table_exists(conn) else None
    engine.dispose()
    return 0 if found is None else found.rows_read


def _version(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        version = str(conn.exec_driver_sql("SELECT VERSION()").scalar_one())
    engine.dispose()
    return version.split(" on ")[0].split(",")[0]


def _report(
    runs: list[Run], versions: list[str], args: argparse.Namespace, limits: Limits, seconds: float
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Lambda proof",
        "",
        f"Run on {now} in {seconds / 60:.1f} minutes: `python -m bench.lambda_proof "
        f"--orders {args.orders} --servers {args.servers} --latency-ms {args.latency_ms} "
        f"--timeout {args.timeout:g} --memory {args.memory} --safety-margin "
        f"{args.safety_margin:g} --chunk-size {args.chunk_size} --kill '{args.kill}'`.",
        "",
        f"- Machine: {os.cpu_count()} cores (shared with other test runs), "
        f"{platform.platform()}, Python {platform.python_version()}; "
        f"{', '.join(versions)} on the same machine, over TCP; load average "
        f"{os.getloadavg()[1]:.1f} over the last 5 minutes at the end.",
        f"- Limits: {limits.timeout:g} s timeout (SIGKILL), {limits.memory_mb} MB address space "
        f"(RLIMIT_AS) per invocation; safety margin {args.safety_margin:g} s; chunks of "
        f"{args.chunk_size:,} orders. Each invocation is a fresh process (a cold start).",
        "- Latency: the proxy delays every packet by the given milliseconds in each direction "
        "(a round trip gains twice that).",
        "",
        "| server | latency per packet | invocations | killed by timeout | "
        "rows committed per invocation | budget used per invocation | longest invocation | "
        "peak RSS | wall time | exactly once |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        invs = r.sim.invocations
        used = ", ".join(
            "-" if i.budget_used is None else f"{100 * i.budget_used:.0f} %" for i in invs
        )
        lines.append(
            f"| {r.label} | {r.latency_ms:g} ms | {len(invs)} | {len(r.sim.killed_by_timeout)} | "
            f"{', '.join(f'{n:,}' for n in r.committed)} | {used} | "
            f"{max(i.seconds for i in invs):.1f} s | {r.sim.peak_rss_mb or 0:.0f} MB | "
            f"{r.seconds:.0f} s | {'yes' if r.ok else 'NO'}: {r.snapshots:,} of {r.expected:,} "
            f"snapshots; {r.missing} missing, {r.different} different, {r.extra} extra |"
        )
    for r in runs:
        lines += [
            "",
            f"## {r.label}, {r.latency_ms:g} ms per packet",
            "",
            render(r.sim, markdown=True),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
