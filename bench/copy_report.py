"""A run's result, the setting (machine, servers, versions) and the Markdown report of
``bench.copy``."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
MARIADB_SETTINGS = (
    "innodb_buffer_pool_size",
    "innodb_flush_log_at_trx_commit",
    "innodb_log_file_size",
    "sync_binlog",
    "log_bin",
    "max_allowed_packet",
)
PG_SETTINGS = ("shared_buffers", "synchronous_commit", "fsync", "wal_level", "max_wal_size")
REFERENCE_FIGURES = (
    "dlt 1.31 connectorx 66k rows/s at 451 MB, pyarrow 42k rows/s at 285 MB, sqlalchemy "
    "12.7k rows/s at 336 MB; pt-archiver 47k rows/s at 25 MB (1,000,000 orders, elsewhere)"
)


@dataclass(frozen=True)
class Result:
    approach: str
    destination: str
    orders: int
    rows: int
    wall: float | None = None
    inner: float | None = None
    peak_mb: float | None = None
    counted: float | None = None  # statements per 1,000 orders, counted in the child
    server: float | None = None  # per 1,000 orders, counted by MariaDB for the bench's account
    correct: str = ""
    note: str = ""


def _run(cmd: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, cwd=ROOT)
    except OSError as exc:
        return f"not available ({exc.strerror})"
    return done.stdout.strip() or done.stderr.strip()


def _machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "?",
    )  # fmt: skip
    kb = int(Path("/proc/meminfo").read_text().split()[1])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), {kb / 1024**2:.1f} GiB RAM, {platform.platform()}; "
        f"load average at the start {load}"
    )


def _mariadb(url: str) -> str:
    engine = sa.create_engine(url)
    names = ", ".join(f"'{n}'" for n in MARIADB_SETTINGS)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT VERSION()").scalar()
        rows = conn.exec_driver_sql(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})")
        found: dict[str, str] = {str(n): str(v) for n, v in rows.all()}
    engine.dispose()
    return f"{version}: " + ", ".join(f"{n}={found.get(n, '?')}" for n in MARIADB_SETTINGS)


def _postgresql(url: str) -> str:
    engine = sa.create_engine(url + "/postgres")
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SHOW server_version").scalar()
        found = {n: conn.exec_driver_sql(f"SHOW {n}").scalar() for n in PG_SETTINGS}
    engine.dispose()
    return f"{version}: " + ", ".join(f"{n}={v}" for n, v in found.items())


def _rowferry() -> str:
    sha = _run(["git", "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "--no-optional-locks", "status", "--porcelain", "src"]).split()[1::2]
    libs = ", ".join(f"{n} {metadata.version(n)}" for n in ("SQLAlchemy", "PyMySQL", "psycopg"))
    changed = f" plus uncommitted changes to {', '.join(dirty)}" if dirty else ""
    return f"{metadata.version('rowferry')} at git {sha}{changed}; {libs}"


def _bench_venv(python: Path) -> str:
    if not python.exists():
        return "not set up"
    found = json.loads(_run([str(python), "-P", str(ROOT / "bench" / "copy_dlt.py"), "--versions"]))
    return ", ".join(f"{name} {version}" for name, version in found.items())


def environment(servers: dict[str, str], bench_python: Path) -> dict[str, str]:
    return {
        "machine": _machine(),
        "Python": platform.python_version(),
        "rowferry": _rowferry(),
        "MariaDB": _mariadb(servers["mariadb"]),
        "PostgreSQL": _postgresql(servers["postgresql"]),
        "dlt venv": _bench_venv(bench_python),
        "pt-archiver": _run(["pt-archiver", "--version"]),
    }


# ------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------


def rate(r: Result, inner: bool = False) -> float | None:
    seconds = r.inner if inner else r.wall
    return r.rows / seconds if seconds else None


def statements(r: Result) -> str:
    """Counted by MariaDB when both sides are MariaDB; else rowferry's own count, or n/a."""
    if r.destination == "mariadb" and r.server is not None:
        return f"{r.server:.1f} (S)"
    if r.counted is not None:
        return f"{r.counted:.1f} (C)"
    if r.server is not None:
        return f"n/a (MariaDB side: {r.server:.2f} S)"
    return "n/a"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def one_line(r: Result) -> str:
    if r.wall is None:
        return f"{r.approach:15} -> {r.destination:10} {r.note}"
    return (
        f"{r.approach:15} -> {r.destination:10} {r.wall:7.2f} s {rate(r) or 0:9,.0f} rows/s "
        f"{r.peak_mb or 0:6.0f} MB  stmts/1k {statements(r):>8}  correct: {r.correct}"
    )


def _table(results: Sequence[Result]) -> list[str]:
    lines = [
        "| approach | into | wall s | in-process s | rows/s (wall) | peak RSS MB "
        "| statements / 1,000 orders | correct |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        correct = r.correct or r.note
        lines.append(
            f"| {r.approach} | {r.destination} | {_num(r.wall)} | {_num(r.inner)} "
            f"| {_num(rate(r), 0)} | {_num(r.peak_mb, 0)} | {statements(r) if r.wall else '–'} "
            f"| {correct} |"
        )
    return lines


def _verdict(value: float, target: float, at_least: bool) -> str:
    met = value >= target if at_least else value <= target
    return "met" if met else "**not met**"


def _ratio_lines(results: Sequence[Result], kind: str) -> list[str]:
    good = [r for r in results if r.destination == kind and r.wall and r.correct == "yes"]
    rowferry = next((r for r in good if r.approach == "rowferry"), None)
    dlts = [r for r in good if r.approach.startswith("dlt-")]
    if rowferry is None:
        return [f"- into {kind}: no correct rowferry result, no ratio"]
    lines = []
    if dlts:
        best = max(dlts, key=lambda r: rate(r) or 0)
        speed = (rate(rowferry) or 0) / (rate(best) or 1)
        inner = (rate(rowferry, True) or 0) / (rate(best, True) or 1)
        memory = (rowferry.peak_mb or 0) / (best.peak_mb or 1)
        lines.append(
            f"- into {kind}: rowferry / fastest dlt backend ({best.approach}) throughput "
            f"**{speed:.2f}** (in-process {inner:.2f}; target ≥ 1: {_verdict(speed, 1, True)}); "
            f"memory **{memory:.2f}** ({rowferry.peak_mb:.0f} / {best.peak_mb:.0f} MB; "
            f"target ≤ 0.33: {_verdict(memory, 1 / 3, False)})"
        )
    pt = next((r for r in good if r.approach == "pt-archiver"), None)
    if pt is not None:
        speed = (rate(rowferry) or 0) / (rate(pt) or 1)
        lines.append(
            f"- into {kind}: rowferry / pt-archiver throughput **{speed:.2f}** (target ≥ 1: "
            f"{_verdict(speed, 1, True)}); memory {rowferry.peak_mb:.0f} / {pt.peak_mb:.0f} MB"
        )
    return lines


def _size_section(results: Sequence[Result]) -> list[str]:
    first = results[0]
    lines = [f"## {first.orders:,} orders ({first.rows:,} rows qualify)", "", *_table(results)]
    lines += ["", "Ratios (rows/s on wall time; only correct results count):", ""]
    for kind in dict.fromkeys(r.destination for r in results):
        lines += _ratio_lines(results, kind)
    extra = [f"- {r.approach} into {r.destination}: {r.note}" for r in results if r.wall and r.note]
    checks = [
        f"- rowferry into {r.destination}: {r.counted:.1f} statements / 1,000 orders counted in "
        f"the process; by MariaDB (its side only into PostgreSQL): {r.server:.1f}"
        for r in results
        if r.approach == "rowferry" and r.counted is not None and r.server is not None
    ]
    return [*lines, "", *extra, *checks, ""]


def render(results: Sequence[Result], setting: dict[str, str], command: str) -> str:
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Plain copy: rowferry, dlt and pt-archiver",
        "",
        f"Measured {now} with `{command}` (written by `bench/copy.py`). The machine may be "
        "shared (see its load average below): wall times and throughputs can then be off by "
        "tens of percent; compare rows measured close together.",
        "",
        "Targets (at 1,000,000 orders): rowferry at least the throughput of the fastest dlt "
        "backend with at most a third of its memory, and at least pt-archiver's throughput "
        f"MariaDB to MariaDB. Reference figures measured elsewhere: {REFERENCE_FIGURES}.",
        "",
        "## Machine and servers",
        "",
        *(f"- {name}: {value}" for name, value in setting.items()),
        "",
    ]
    for orders in dict.fromkeys(r.orders for r in results):
        lines += _size_section([r for r in results if r.orders == orders])
    return "\n".join([*lines, METHOD])


METHOD = """## Method

- Source: `workload.build(engine, orders=N, seed=7)` once per size in a fresh MariaDB database;
  every run copies into a fresh database (MariaDB, or PostgreSQL), dropped after the run.
  Everything over TCP to 127.0.0.1.
- rowferry: `rowferry.run(Migration(name="orders-copy", source="orders", where="status IN
  :statuses", params=..., target=Target("orders")), source, target)` with its defaults (chunks of
  1,000, each chunk's rows and checkpoint in one transaction, lease); the target `orders` table is
  the source's (from `workload.metadata`) without the foreign key.
- dlt: `sql_table(credentials, table="orders", incremental=dlt.sources.incremental("id"),
  backend=..., query_adapter_callback=<adds WHERE status IN (...)>)`, otherwise dlt's defaults
  (`chunk_size` 50,000; connectorx returns the whole result as one Arrow table), a fresh
  `pipelines_dir`; into PostgreSQL with dlt's `postgres` destination (dataset `orders_copy`), into
  MariaDB with its `sqlalchemy` destination (the dataset is the database). dlt creates its own
  tables (bigint ids, `_dlt_load_id`/`_dlt_id` columns for the sqlalchemy backend).
- pt-archiver: `--no-delete --bulk-insert --limit 1000 --commit-each --statistics
  --no-version-check --charset utf8 --no-check-charset` into a copy of the source table.
  `--charset utf8mb4` (or `A=utf8mb4`) stops pt-archiver 3.2.1 with `Cannot find encoding
  "utf8mb4"` when it opens its bulk file, and without a charset it refuses the utf8mb4 table
  (latin1 connection). `utf8` (utf8mb3) is right for this data, which has no character outside
  the BMP; it would fail on emoji. `--bulk-insert` needs `local_infile` (see above).
- Wall time is measured around the child process: interpreter start-up and imports included.
  In-process time is reported by the child: from just before `rowferry.run` (or building the dlt
  source) to the end. rows/s = qualifying rows / wall time.
- Peak RSS: the larger of GNU time's `%M` for the command (`/usr/bin/time` forks and execs it
  and reports the `ru_maxrss` that `wait4` gives: on Linux the maximum over the process and the
  descendants it waited for) and the largest sum of the RSS of all live descendants of `time`,
  sampled every 20 ms (`bench/copy_support.py`). `os.wait4` straight on a child of the bench would
  over-report: a child forked from the bench starts with the bench's own high-water mark.
- Statements per 1,000 copied orders. "(S)": counted by MariaDB, the same way for every tool:
  the children connect to MariaDB with an account made for the run, and the statements are the
  change of that account's `SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS` in
  `information_schema.USER_STATISTICS` (`userstat` on) over the run; both sides when both are
  MariaDB, connection set-up included, other clients of the server excluded. Into PostgreSQL only
  the MariaDB side can be counted that way, hence "n/a" for dlt. "(C)": counted in rowferry's
  process (SQLAlchemy `before_cursor_execute`, `commit` and `rollback` events on every engine,
  plus each COPY through psycopg): the statements rowferry sends, without the drivers' and
  SQLAlchemy's connection set-up; the lines under the table give both counts for rowferry.
- Correct: the target has exactly the qualifying ids, each once, and ~200 evenly spread rows
  equal the source field by field (decimals as exact `Decimal` values, datetimes to the
  microsecond, aware datetimes taken as UTC, text equal, a float where a decimal belongs fails).
"""
