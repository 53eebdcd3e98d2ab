"""The results of bench/compare.py and the markdown report: machine, servers, table, targets."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from bench import compare_targets, latency
from bench.compare_result import Result
from rowferry.aws.latency_proxy import LatencyProxy

MARIADB_SETTINGS = (
    "innodb_buffer_pool_size",
    "innodb_flush_log_at_trx_commit",
    "max_allowed_packet",
    "group_concat_max_len",
    "sync_binlog",
    "log_bin",
)
POSTGRESQL_SETTINGS = ("shared_buffers", "synchronous_commit", "work_mem", "fsync", "jit")


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def server_settings(url: str) -> str:
    """The server's version and the settings that matter here, as one line."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            name = engine.dialect.name
            if name == "sqlite":
                journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
                return (
                    f"SQLite {sqlite3.sqlite_version} (file in /tmp), journal_mode={journal}, "
                    f"synchronous={sync}"
                )
            version = conn.exec_driver_sql("SELECT version()").scalar()
            if name == "postgresql":
                values = [
                    f"{s}={conn.exec_driver_sql(f'SHOW {s}').scalar()}" for s in POSTGRESQL_SETTINGS
                ]
                return f"{str(version).split(' on ')[0]}: " + ", ".join(values)
            names = ", ".join(f"'{s}'" for s in MARIADB_SETTINGS)
            rows = conn.exec_driver_sql(f"SHOW VARIABLES WHERE Variable_name IN ({names})").all()
            return f"MariaDB {version}: " + ", ".join(f"{k}={v}" for k, v in rows)
    finally:
        engine.dispose()


@dataclass
class Setup:
    args: argparse.Namespace
    started: dt.datetime
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    servers: dict[str, str] = field(default_factory=dict)
    latency: dict[str, str] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    #: (server, orders, approach, seconds waited, what the server showed) before each approach
    settled: list[tuple[str, int, str, float, str]] = field(default_factory=list)

    @classmethod
    def now(cls, args: argparse.Namespace) -> Setup:
        return cls(args, dt.datetime.now().replace(microsecond=0), os.getloadavg())

    def proxy_delay(self, server: str, url: str, round_trip_ms: float) -> float:
        """The ThreadProxy delay each way for ``round_trip_ms`` more per round trip (calibrated
        once per server, and compared with rowferry's LatencyProxy for the report)."""
        if server not in self.delays:
            delay, added = latency.calibrate(url, round_trip_ms)
            other = latency.added_ms(url, LatencyProxy, round_trip_ms / 2)
            self.delays[server] = delay
            self.latency[server] = (
                f"naive-1ms on {server}: `bench.latency.ThreadProxy` with {delay:.2f} ms each way, "
                f"measured +{added:.2f} ms per `SELECT 1` round trip "
                "(`rowferry.aws.latency_proxy.LatencyProxy"
                f"(delay_ms={round_trip_ms / 2:g})` measured "
                f"+{other:.2f} ms: its asyncio sleeps wait whole milliseconds, so it is not used)"
            )
        return self.delays[server]

    def finish(self) -> None:
        self.load_after = os.getloadavg()

    def machine(self) -> str:
        ram = _first("/proc/meminfo", "MemTotal")
        ram_gib = f"{int(ram.split()[0]) / 2**20:.1f} GiB" if ram != "unknown" else ram
        return (
            f"{os.cpu_count()} cores ({_first('/proc/cpuinfo', 'model name')}), {ram_gib} RAM, "
            f"{platform.platform()}, Python {platform.python_version()}, "
            f"SQLAlchemy {sa.__version__}"
        )


def render(setup: Setup, results: list[Result]) -> str:
    args = setup.args
    lines = [
        f"# Speed comparison of the snapshot job, {setup.started:%Y-%m-%d %H:%M}",
        "",
        f"Command: `python -m bench.compare --orders {','.join(map(str, args.orders))} "
        f"--servers {','.join(args.servers)} --approaches {','.join(args.approaches)} "
        f"--naive-cap {args.naive_cap:g}"
        + (f" --repeat {args.repeat}" if args.repeat > 1 else "")
        + (" --warm`" if args.warm else "`"),
        "",
        *(WARM if args.warm else []),
        f"- Machine: {setup.machine()}; servers on the same machine, over TCP on 127.0.0.1.",
        "- Load average (1, 5, 15 min) before: "
        + ", ".join(f"{x:.2f}" for x in setup.load_before)
        + "; after: "
        + ", ".join(f"{x:.2f}" for x in setup.load_after)
        + (
            " (the machine is shared; every figure is one run)."
            if args.repeat == 1
            else f" (the machine is shared; each approach ran {args.repeat} times, in turns "
            "with the others, naive once: its row is its median run, with the range of "
            "its times)."
        ),
        *[f"- {setup.servers[s]}" for s in args.servers if s in setup.servers],
        *[f"- {setup.latency[s]}" for s in args.servers if s in setup.latency],
        *_settled(setup),
        "",
        *METHOD,
        "",
        "| server | orders | approach | seconds | snapshots | snapshots/s | statements/1,000 "
        "| commits/1,000 | peak RSS MB | correct |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
        *[r.line() for r in results],
        "",
        *compare_targets.ratios(results),
        "",
        *compare_targets.targets(results),
        "",
        *CONTEXT,
    ]
    return "\n".join(lines) + "\n"


def _settled(setup: Setup) -> list[str]:
    """One line per server and size: how long the bench waited for the server to settle."""
    lines = []
    for server, orders in dict.fromkeys((s, o) for s, o, *_ in setup.settled):
        waits = [(a, sec, d) for s, o, a, sec, d in setup.settled if (s, o) == (server, orders)]
        approach, longest, detail = max(waits, key=lambda w: w[1])
        total = sum(w[1] for w in waits)
        lines.append(
            f"- Settling (bench/settle.py) on {server} at {orders:,} orders: {total:.0f} s in all "
            f"before {len(waits)} approaches; longest {longest:.0f} s, before {approach} "
            f"({detail})"
        )
    return lines


WARM = [
    "**Warm runs**: every figure is an approach's second run in its process, on the engine "
    "kept from its first, untimed run (the dialect initialized, statements compiled and "
    "cached, rowferry's tables' definitions read once already), as a warm Lambda function or "
    "a worker runs its later trips; the target was emptied and the server settled in between, "
    "and the second run connects anew (neither engine pools connections). The targets are about "
    "a fresh process: the verdicts below are for these warm figures.",
    "",
]

METHOD = [
    "How it is measured:",
    "",
    "- Each approach runs in a process of its own (`python -m bench.compare_one APPROACH URL`) "
    "on the same freshly built data; the target and rowferry's state are emptied in between "
    "(`harness.reference.start_over`), and then the server is left to finish its background "
    "work before the clock starts (bench/settle.py: on MariaDB until InnoDB's history list is "
    "under 1,000 and at most 1 % of its buffer pool is dirty; on PostgreSQL a VACUUM of the "
    "target and a CHECKPOINT).",
    "- seconds: wall time inside that process from before the engine is created (so before "
    "connecting) to after it is disposed: connect to finish. Python start-up and imports are "
    "not in it.",
    "- peak RSS: `ru_maxrss` of that process from `os.wait4`, in MB (10^6 bytes), read by a "
    "small launcher process (bench/launcher.py): Linux starts a child's `ru_maxrss` at the peak "
    "RSS of the process it was forked from, so forked from the driver it would read the "
    "driver's memory. It "
    "includes the interpreter, SQLAlchemy, the driver and rowferry (the `limit` rows, which "
    "move no row through Python, show that floor).",
    "- statements/1,000: SQLAlchemy `before_cursor_execute` events per 1,000 snapshots written "
    "(an executemany counts once; COMMITs are not statements there and are counted apart). "
    '"+N direct": statements rowferry sends through the driver\'s own cursor, which SQLAlchemy '
    "does not see (the COPY of each chunk on PostgreSQL, the multi-row INSERTs on MySQL); counted "
    "by wrapping the driver's cursor.",
    "- correct: every finished order has exactly one snapshot and each equals the reference "
    "document (`harness.reference.expected_snapshots` against `harness.reference.snapshots` up "
    "to 100,000 orders, the same documents range by range above: bench/check.py), compared "
    "as parsed JSON with exact decimals. A capped naive run is checked on the "
    "snapshots it wrote.",
    "- naive stops at the cap; its rate is over the snapshots it did (it slows down as OFFSET "
    "grows, so the full run would be slower than that rate says). naive-1ms runs through a "
    "latency proxy in the driver process calibrated to add 1 ms per round trip (below); n/a on "
    "SQLite.",
    "- limit: one `INSERT … SELECT` building every snapshot in SQL; limit-chunked: the same "
    "statement per key range of 1,000 finished orders, one COMMIT each (plus one query for the "
    "range's upper key). The best server-side reference is the faster of the two.",
]

CONTEXT = [
    "## Reference magnitudes of the founding case (1,615 orders, MariaDB 10.11, 2 cores)",
    "",
    "| approach | 1,615 orders | statements per 1,000 orders |",
    "|---|---:|---:|",
    "| the ORM job (OFFSET pages, relations loaded per order, a commit per snapshot) | 3.9 s "
    "(20 s with +1 ms per round trip) | ~7,000 |",
    "| keyset chunks of 1,000, one query per relation, one multi-row INSERT and COMMIT per "
    "chunk | 0.39 s | ~10 |",
    "| one server-side `INSERT … SELECT` with JSON_OBJECT/JSON_ARRAYAGG | 0.19 s | ~1 |",
]
