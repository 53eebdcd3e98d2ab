"""The fault-injection soak: the harness of ``harness/faults.py`` at a larger scale.

    python -m bench.soak [--kills 2000] [--concurrency 2,4,8] [--orders 3000]
                         [--servers mariadb,postgresql] [--chunk-size 10] [--stalls 4]

For each server it creates a database on the local server (found as the tests find it, from
``ROWFERRY_TEST_MYSQL_URL`` and ``ROWFERRY_TEST_PG_URL``), builds the reference workload, and:

1. kills trips of the order-history migration with SIGKILL at ``--kills`` random instants spread
   over one uninterrupted run, checking after every kill that the target holds exactly the rows
   the committed checkpoint accounts for, and comparing every completed run, row for row, with
   the uninterrupted one;
2. for each N of ``--concurrency``, starts the migration over ``--repeats`` times and releases N
   trips at once, round after round until done: in every round one trip holds the lease while
   the N - 1 others are refused (exit status 4), and only that one commits;
3. ``--stalls`` times, stalls a trip past its lease (between chunks and inside a chunk, in
   turn) while another trip takes over and finishes: the stalled trip must commit nothing.

It prints its progress, drops its databases, and writes ``bench/soak-report.md``. It stops at
the first row lost, duplicated or changed, or trip that ends as it must not, and reports it
(exit status 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from harness import faults, reference

SERVER_URLS = {
    "mariadb": os.environ.get(
        "ROWFERRY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
    "postgresql": os.environ.get(
        "ROWFERRY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    ),
}
VERSION_SQL = {"mariadb": "SELECT VERSION()", "postgresql": "SHOW server_version"}
REPORT = Path(__file__).with_name("soak-report.md")


@dataclass(frozen=True)
class Options:
    """The soak's size (see :func:`parse`)."""

    kills: int
    concurrency: tuple[int, ...]
    orders: int
    servers: tuple[str, ...]
    chunk_size: int
    chunks_per_trip: int
    repeats: int
    stalls: int
    seed: int
    report: Path


@dataclass
class StallTally:
    """Stalled trips whose lease another trip took over, and how each stalled trip ended."""

    takeovers: int = 0
    raised: Counter[str] = field(default_factory=Counter)


@dataclass
class ServerFigures:
    """Everything the soak did and found on one server."""

    server: str
    version: str = "?"
    qualifying: int = 0
    kills: faults.KillTally = field(default_factory=faults.KillTally)
    contention: dict[int, faults.ContentionTally] = field(default_factory=dict)
    stalls: StallTally = field(default_factory=StallTally)
    seconds: float = 0.0
    failure: str | None = None


def parse(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Fault injection at scale (see bench/soak.py); writes bench/soak-report.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--kills", type=int, default=2000, help="SIGKILLs per server")
    p.add_argument("--concurrency", default="2,4,8", help="numbers of trips started at once")
    p.add_argument("--orders", type=int, default=3000, help="orders (about 60%% qualify)")
    p.add_argument("--servers", default="mariadb,postgresql", help="servers to soak")
    p.add_argument("--chunk-size", type=int, default=10, help="rows per chunk")
    p.add_argument("--chunks-per-trip", type=int, default=10, help="chunks per contended trip")
    p.add_argument("--repeats", type=int, default=3, help="contended migrations per number")
    p.add_argument("--stalls", type=int, default=4, help="trips stalled past their lease")
    p.add_argument("--seed", type=int, default=20261126, help="seed of the kill instants")
    p.add_argument("--report", type=Path, default=REPORT, help="where to write the report")
    a = p.parse_args(argv)
    servers = tuple(s for s in a.servers.split(",") if s)
    if set(servers) - set(SERVER_URLS):
        p.error(f"--servers: choose among {', '.join(SERVER_URLS)}")
    concurrency = tuple(int(n) for n in a.concurrency.split(",") if n)
    return Options(
        a.kills, concurrency, a.orders, servers, a.chunk_size, a.chunks_per_trip, a.repeats,
        a.stalls, a.seed, a.report,
    )  # fmt: skip


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- databases ---------------------------------------------------------------------------------


def _admin(server: str, sql: str) -> str:
    """Run one statement on the server's default database; return the first value if any."""
    engine = sa.create_engine(SERVER_URLS[server], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(sql)
            return str(result.scalar()) if result.returns_rows else ""
    finally:
        engine.dispose()


@contextmanager
def database(server: str) -> Iterator[str]:
    """A new, empty database on ``server`` (its URL), dropped afterwards."""
    name = "rf_soak_" + uuid.uuid4().hex[:10]
    _admin(server, f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(SERVER_URLS[server]).set(database=name).render_as_string(False)
    finally:
        force = " WITH (FORCE)" if server == "postgresql" else ""
        _admin(server, f"DROP DATABASE IF EXISTS {name}{force}")


# --- the three faults --------------------------------------------------------------------------


def soak_server(server: str, options: Options) -> ServerFigures:
    """All three faults on one server; a failure is recorded in the figures, not raised."""
    figures = ServerFigures(server, version=_admin(server, VERSION_SQL[server]))
    started = time.monotonic()
    try:
        with database(server) as url:
            figures.qualifying = reference.build(url, orders=options.orders).qualifying
            expected = reference.expected_snapshots(url)
            say(f"{server}: {options.orders} orders, {figures.qualifying} qualify")
            kill(url, options, figures)
            contend(url, options, expected, figures)
            stall(url, options, expected, figures)
    except (AssertionError, faults.HarnessError) as exc:  # FaultFound is an AssertionError
        figures.failure = f"{type(exc).__name__}: {exc}"
        say(f"{server}: FAILED: {figures.failure}")
    figures.seconds = time.monotonic() - started
    return figures


def kill(url: str, options: Options, figures: ServerFigures) -> None:
    baseline = faults.uninterrupted(url, chunk_size=options.chunk_size)
    say(f"{figures.server}: an uninterrupted trip takes {baseline.seconds:.2f} s; killing")

    def progress(tally: faults.KillTally) -> None:
        if tally.kills % 100 == 0 and tally.kills != figures.kills.kills:
            say(
                f"{figures.server}: {tally.kills} kills ({tally.kills_after_progress} after "
                f"commits), {tally.completions} completions, 0 rows lost or duplicated"
            )
        figures.kills = dataclasses.replace(tally)

    figures.kills = faults.kill_and_resume(
        url,
        baseline,
        kills=options.kills,
        seed=options.seed,
        chunk_size=options.chunk_size,
        report=progress,
    )


def contend(url: str, options: Options, expected: faults.Snapshots, figures: ServerFigures) -> None:
    inspector = faults.Inspector(url)
    try:
        for runs in options.concurrency:
            total = figures.contention.setdefault(runs, faults.ContentionTally())
            for _ in range(options.repeats):
                inspector.start_over()
                tally = faults.contend(
                    url,
                    runs,
                    chunk_size=options.chunk_size,
                    chunks_per_trip=options.chunks_per_trip,
                )
                _check_exactly_once(url, expected, f"{runs} concurrent trips")
                _add(total, tally)
            say(f"{figures.server}: {runs} at once: {total.runs} trips, {total.refused} refused")
    finally:
        inspector.close()


def _add(total: faults.ContentionTally, tally: faults.ContentionTally) -> None:
    total.rounds += tally.rounds
    total.runs += tally.runs
    total.refused += tally.refused
    total.chunks += tally.chunks
    total.slowest_refusal = max(total.slowest_refusal, tally.slowest_refusal)
    total.done = tally.done


def stall(url: str, options: Options, expected: faults.Snapshots, figures: ServerFigures) -> None:
    inspector = faults.Inspector(url)
    try:
        for n in range(options.stalls):
            inspector.start_over()
            inside = n % 2 == 1
            result = faults.stall_past_lease(
                url, chunk_size=options.chunk_size, inside_chunk=inside
            )
            where = "inside a chunk" if inside else "between chunks"
            if result.stalled.code != 1 or result.after != result.before_resume:
                raise faults.FaultFound(f"a trip stalled {where} ended {result.stalled}")
            _check_exactly_once(url, expected, f"a stall {where}")
            figures.stalls.takeovers += 1
            figures.stalls.raised[f"{result.stalled.raised} ({where})"] += 1
        say(f"{figures.server}: {figures.stalls.takeovers} stalled trips taken over")
    finally:
        inspector.close()


def _check_exactly_once(url: str, expected: faults.Snapshots, after: str) -> None:
    lost, different = faults.compare(reference.snapshots(url), expected)
    if lost or different:
        raise faults.FaultFound(f"after {after}: {lost} rows lost, {different} different")


# --- the report --------------------------------------------------------------------------------

NAMES = {"mariadb": "MariaDB", "postgresql": "PostgreSQL"}


def render(options: Options, figures: list[ServerFigures], when: dt.datetime, took: float) -> str:
    """The report, in Markdown."""
    return "\n".join(
        [
            "# Fault-injection soak",
            "",
            *_header(options, figures, when, took),
            "",
            *_table(figures),
            "",
            *_details(figures),
            "",
        ]
    )


def _header(
    options: Options, figures: list[ServerFigures], when: dt.datetime, took: float
) -> list[str]:
    versions = ", ".join(f"{NAMES[f.server]} {f.version}" for f in figures)
    qualifying = max((f.qualifying for f in figures), default=0)
    return [
        f"Run on {when:%Y-%m-%d %H:%M} UTC in {took / 60:.1f} minutes:",
        f"`python -m bench.soak {' '.join(_arguments(options))}`.",
        "",
        f"- Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; {versions} on the same machine, over TCP; load average "
        f"{os.getloadavg()[1]:.1f} over the last 5 minutes at the end.",
        f"- rowferry: {_revision()}.",
        f"- Workload: the reference workload with {options.orders} orders ({qualifying} qualify "
        f"for the order-history migration), chunks of {options.chunk_size} rows.",
    ]


def _arguments(options: Options) -> list[str]:
    return [
        f"--kills {options.kills}",
        f"--concurrency {','.join(map(str, options.concurrency))}",
        f"--orders {options.orders}",
        f"--servers {','.join(options.servers)}",
        f"--chunk-size {options.chunk_size}",
        f"--chunks-per-trip {options.chunks_per_trip}",
        f"--repeats {options.repeats}",
        f"--stalls {options.stalls}",
        f"--seed {options.seed}",
    ]


def _revision() -> str:
    """The commit the soak ran on, and whether tracked files had uncommitted changes."""
    try:
        git = ["git", "-C", str(Path(__file__).parent)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True
        )
    except OSError:
        return "unknown revision"
    changes = " with uncommitted changes" if dirty.stdout.strip() else ""
    return f"commit {commit.stdout.decode().strip() or '?'}{changes}"


def _counts(f: ServerFigures) -> dict[str, int]:
    """The headline figures of one server, by label."""
    return {
        "kills survived (SIGKILL at random instants)": f.kills.kills,
        "… before the chunk loop (connect, schema checks, lease)": f.kills.kills_in_setup,
        "… inside the chunk loop (a chunk in progress rolled back)": f.kills.kills_in_chunks,
        "… of trips that had committed chunks already": f.kills.kills_after_progress,
        "completed runs, each compared row for row": f.kills.completions,
        "concurrent trips started": sum(t.runs for t in f.contention.values()),
        "… refused (exit 4) while another held the lease": sum(
            t.refused for t in f.contention.values()
        ),
        "stalled trips whose expired lease was taken over": f.stalls.takeovers,
        "rows lost": f.kills.rows_lost,
        "rows duplicated": f.kills.rows_duplicated,
        "rows different from the uninterrupted run": f.kills.rows_different,
    }


def _table(figures: list[ServerFigures]) -> list[str]:
    counts = [_counts(f) for f in figures]
    lines = [
        "| | " + " | ".join(NAMES[f.server] for f in figures) + " | total |",
        "|---|" + "---:|" * (len(figures) + 1),
    ]
    for label in counts[0] if counts else []:
        values = [c[label] for c in counts]
        lines.append(f"| {label} | " + " | ".join(map(str, [*values, sum(values)])) + " |")
    return lines


def _details(figures: list[ServerFigures]) -> list[str]:
    return [*_contention_table(figures), "", *_stall_ends(figures), "", *_times(figures)]


def _contention_table(figures: list[ServerFigures]) -> list[str]:
    lines = [
        "Trips started at once, rounds until the migration was done (in every round one trip",
        "held the lease and all the others were refused):",
        "",
        "| server | at once | rounds | trips | refused | chunks | slowest refusal |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        for runs, t in f.contention.items():
            lines.append(
                f"| {NAMES[f.server]} | {runs} | {t.rounds} | {t.runs} | {t.refused} | "
                f"{t.chunks} | {t.slowest_refusal:.2f} s |"
            )
    return lines


def _stall_ends(figures: list[ServerFigures]) -> list[str]:
    lines = ["How the stalled trips ended when they went on after the takeover:", ""]
    for f in figures:
        ends = ", ".join(f"{n} × {what}" for what, n in sorted(f.stalls.raised.items()))
        lines.append(f"- {NAMES[f.server]}: {ends or 'none'}")
    return lines


def _times(figures: list[ServerFigures]) -> list[str]:
    lines = ["Time and failures:", ""]
    for f in figures:
        runs = f.kills.run_seconds or [0.0]
        kills = (
            f"{f.kills.seconds / 60:.1f} min of kills, a whole run measured at "
            f"{min(runs):.2f} to {max(runs):.2f} s"
        )
        failure = f"FAILED: {f.failure}" if f.failure else "no failure"
        lines.append(f"- {NAMES[f.server]}: {f.seconds / 60:.1f} min ({kills}); {failure}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    when, started = dt.datetime.now(dt.UTC), time.monotonic()
    figures = [soak_server(server, options) for server in options.servers]
    options.report.write_text(render(options, figures, when, time.monotonic() - started))
    say(f"report written to {options.report}")
    return 1 if any(f.failure for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
