"""Plain copy benchmark: rowferry, dlt and pt-archiver copy the finished orders side by side.

Each size builds the reference workload once in a fresh MariaDB database; each run copies the
qualifying ``orders`` rows (status uncollected, cancelled or dispensed) into a fresh PostgreSQL or
MariaDB database, in a child process of its own whose wall time and peak memory are measured
(see ``bench/copy_support.py``); then the result is checked (count, no duplicate, exactly the
qualifying ids, ~200 evenly spread rows compared field by field) and the database dropped.

- rowferry: ``rowferry.run`` of a Migration without transform, defaults (``bench/copy_rowferry.py``)
- dlt: ``sql_table`` with ``incremental("id")`` per backend (``bench/copy_dlt.py``)
- pt-archiver: ``--no-delete --bulk-insert --limit 1000 --commit-each``, MariaDB to MariaDB

The children connect to MariaDB with an account made for the run (dropped at the end), so that
MariaDB counts their statements, and only theirs, in ``information_schema.USER_STATISTICS``;
``userstat`` (for that count) and ``local_infile`` (for pt-archiver's LOAD DATA LOCAL INFILE) are
switched on for the run if they are off, and back off afterwards. Every database the run makes is
named ``rfcopy_*`` and dropped at the end, also on failure. The report (``bench/copy-report.md``)
states the machine, the server settings, the versions, the table, the ratios and the method.

Setup (dlt lives in a venv of its own so that the project's venv is not disturbed)::

    python3.11 -m venv .bench-venv
    .bench-venv/bin/pip install -r bench/requirements-copy.txt
    apt-get install -y percona-toolkit

Run from the repository root with the project's venv active::

    python -m bench.copy --orders 100000 [--approaches rowferry,dlt-pyarrow,pt-archiver]
        [--destinations postgresql,mariadb] [--report bench/copy-report.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import sqlalchemy as sa

from bench import copy_report
from bench.copy_report import Result
from bench.copy_support import (
    TIME,
    Measured,
    SourceFacts,
    check,
    run_measured,
    source_facts,
)
from rowferry.demo import workload

ROOT = Path(__file__).resolve().parent.parent
BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
SERVERS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432",
}
DLT_BACKENDS = ("sqlalchemy", "pyarrow", "connectorx")
APPROACHES = ("rowferry", *(f"dlt-{b}" for b in DLT_BACKENDS), "pt-archiver")
DESTINATIONS = ("postgresql", "mariadb")
STATUS_SQL = ", ".join(f"'{s}'" for s in workload.FINAL_STATUSES)


@dataclass(frozen=True)
class Job:
    """One child process to run, and where its rows land (URL for the check, table name)."""

    cmd: list[str]
    cwd: Path
    check_url: str
    table: str
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class Run:
    """What one job needs: databases as administrator URLs, ``client`` gives the children's."""

    approach: str
    kind: str
    source: str
    target: str
    tmp: Path
    client: Callable[[str], str]


class Servers:
    """The servers as the bench uses them: the databases it made, dropped at the end (also on
    failure), and a MariaDB account of its own for the children, whose statements MariaDB counts
    in ``information_schema.USER_STATISTICS`` (``userstat``, switched on for the run if off)."""

    SWITCHES = ("local_infile", "userstat")

    def __init__(self) -> None:
        self.made: list[str] = []
        self.user, self.password = "rfcopy_" + uuid.uuid4().hex[:8], uuid.uuid4().hex
        self.switched: list[str] = []

    def __enter__(self) -> Servers:
        self.admin("mariadb", f"CREATE USER {self._account} IDENTIFIED BY '{self.password}'")
        for name in self.SWITCHES:
            if not self.admin("mariadb", f"SELECT @@global.{name}"):
                self.admin("mariadb", f"SET GLOBAL {name} = 1")
                self.switched.append(name)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for url in list(self.made):
                self.drop(url)
        finally:
            self.admin("mariadb", f"DROP USER IF EXISTS {self._account}")
            for name in self.switched:
                self.admin("mariadb", f"SET GLOBAL {name} = 0")

    @property
    def _account(self) -> str:
        return f"'{self.user}'@'127.0.0.1'"

    def create(self, kind: str) -> str:
        """A fresh database; its URL with the administrator's account."""
        name = "rfcopy_" + uuid.uuid4().hex[:10]
        self.admin(kind, f"CREATE DATABASE {name}")
        self.made.append(f"{SERVERS[kind]}/{name}")
        if kind == "mariadb":
            self.admin(kind, f"GRANT ALL PRIVILEGES ON {name}.* TO {self._account}")
        return self.made[-1]

    def drop(self, url: str) -> None:
        kind = "postgresql" if url.startswith("postgresql") else "mariadb"
        force = " WITH (FORCE)" if kind == "postgresql" else ""
        self.admin(kind, f"DROP DATABASE IF EXISTS {sa.make_url(url).database}{force}")
        self.made.remove(url)

    def client(self, url: str) -> str:
        """The URL the children use: on MariaDB, with the bench's own account."""
        if url.startswith("postgresql"):
            return url
        parsed = sa.make_url(url).set(username=self.user, password=self.password)
        return parsed.render_as_string(hide_password=False)

    def statements(self) -> int:
        """Statements MariaDB has counted for the bench's account so far."""
        sent = self.admin(
            "mariadb",
            "SELECT COALESCE(SUM(SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS), 0) "
            f"FROM information_schema.USER_STATISTICS WHERE USER = '{self.user}'",
        )
        return int(str(sent))

    @staticmethod
    def admin(kind: str, sql: str) -> object:
        base = SERVERS[kind] + ("/postgres" if kind == "postgresql" else "")
        engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.exec_driver_sql(sql)
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()


def create_orders(url: str) -> None:
    """The source's ``orders`` table, without its foreign key to ``patients``."""
    source = workload.metadata.tables["orders"]
    meta = sa.MetaData()
    columns = [
        sa.Column(
            c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False
        )
        for c in source.columns
    ]
    table = sa.Table("orders", meta, *columns, **source.kwargs)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            table.create(conn)
    finally:
        engine.dispose()


def rowferry_job(run: Run) -> Job:
    create_orders(run.target)
    cmd = [sys.executable, "-m", "bench.copy_rowferry", run.client(run.source)]
    return Job([*cmd, run.client(run.target)], ROOT, run.target, "orders")


def dlt_job(run: Run) -> Job:
    url = sa.make_url(run.client(run.target))
    if run.kind == "postgresql":  # dlt insists on a password; the server trusts local connections
        dlt_url = url.set(drivername="postgresql", password="trust")
        dataset, table = "orders_copy", "orders_copy.orders"
    else:  # dlt's sqlalchemy destination: the dataset is a MariaDB database
        dlt_url, dataset, table = url, str(url.database), "orders"
    # -P: bench/ must not be on sys.path, where copy.py would shadow the standard library's copy
    cmd = [str(BENCH_PYTHON), "-P", str(ROOT / "bench" / "copy_dlt.py")]
    cmd += ["--backend", run.approach.removeprefix("dlt-"), "--source", run.client(run.source)]
    cmd += ["--destination", run.kind, "--dataset", dataset]
    cmd += ["--dest-url", dlt_url.render_as_string(hide_password=False)]
    cmd += ["--pipelines-dir", str(run.tmp / "pipelines")]
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "RUNTIME__LOG_LEVEL": "WARNING"}
    return Job(cmd, run.tmp, run.target, table, env)


def pt_archiver_job(run: Run) -> Job:
    create_orders(run.target)

    def dsn(url: str) -> str:
        u = sa.make_url(run.client(url))
        return f"h=127.0.0.1,P=3306,u={u.username},p={u.password},D={u.database},t=orders"

    cmd = ["pt-archiver", "--source", dsn(run.source), "--dest", dsn(run.target)]
    cmd += ["--where", f"status IN ({STATUS_SQL})", "--no-delete", "--bulk-insert"]
    cmd += ["--limit", "1000", "--commit-each", "--statistics", "--no-version-check"]
    cmd += ["--charset", "utf8", "--no-check-charset"]  # see copy_report.METHOD
    return Job(cmd, run.tmp, run.target, "orders")


def make_job(run: Run) -> Job:
    if run.approach == "rowferry":
        return rowferry_job(run)
    if run.approach == "pt-archiver":
        return pt_archiver_job(run)
    return dlt_job(run)


def missing_tool(approach: str) -> str | None:
    if approach.startswith("dlt-") and not BENCH_PYTHON.exists():
        return f"does not run: {BENCH_PYTHON.relative_to(ROOT)} not found (see setup above)"
    if approach == "pt-archiver" and shutil.which("pt-archiver") is None:
        return "does not run: pt-archiver not installed (apt-get install percona-toolkit)"
    return None


def child_report(measured: Measured) -> dict[str, float]:
    lines = [line for line in measured.stdout.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {}


def failure(measured: Measured) -> str:
    """The exit status and the last line that names an error (else the last line)."""
    lines = measured.stderr.strip().splitlines() or ["?"]
    named = [line for line in lines if "Error" in line or "Exception" in line]
    return f"failed (exit {measured.returncode}): {(named or lines)[-1].strip()[:200]}"


def pt_statistics(measured: Measured) -> str:
    """pt-archiver's own count of what it sent (``--statistics``), e.g. ``select 3``."""
    wanted = ("select", "bulk_inserting", "commit", "other")
    found = [line.split()[:2] for line in measured.stdout.splitlines()]
    counts = [f"{f[0]} {f[1]}" for f in found if len(f) == 2 and f[0] in wanted]
    return "pt-archiver --statistics: " + ", ".join(counts) if counts else ""


def run_one(
    approach: str, kind: str, source: str, orders: int, facts: SourceFacts, servers: Servers
) -> Result:
    base = Result(approach, kind, orders, len(facts.ids))
    if note := missing_tool(approach):
        return replace(base, note=note)
    target = servers.create(kind)
    try:
        with tempfile.TemporaryDirectory(prefix="rfcopy-") as tmp:
            job = make_job(Run(approach, kind, source, target, Path(tmp), servers.client))
            before = servers.statements()
            measured = run_measured(job.cmd, job.cwd, job.env)
            sent = (servers.statements() - before) * 1000 / base.rows
        if measured.returncode != 0:
            return replace(base, note=failure(measured))
        child = child_report(measured)
        return replace(
            base,
            wall=measured.wall,
            inner=child.get("seconds"),
            peak_mb=measured.peak_kb / 1024,
            counted=child["statements"] * 1000 / base.rows if "statements" in child else None,
            server=sent,
            correct=check(job.check_url, job.table, facts),
            note=pt_statistics(measured) if approach == "pt-archiver" else "",
        )
    finally:
        servers.drop(target)


def runs(approaches: list[str], destinations: list[str]) -> list[tuple[str, str]]:
    pairs = [(a, d) for a in approaches for d in destinations]
    return [(a, d) for a, d in pairs if not (a == "pt-archiver" and d != "mariadb")]


def bench_size(orders: int, args: argparse.Namespace, servers: Servers) -> list[Result]:
    source = servers.create("mariadb")
    try:
        started = time.perf_counter()
        engine = sa.create_engine(source)
        try:
            workload.build(engine, orders=orders, seed=7)
        finally:
            engine.dispose()
        print(f"{orders:,} orders built in {time.perf_counter() - started:.1f} s", flush=True)
        facts = source_facts(source, workload.FINAL_STATUSES)
        results = []
        for approach, kind in runs(args.approaches, args.destinations):
            result = run_one(approach, kind, source, orders, facts, servers)
            print(copy_report.one_line(result), flush=True)
            results.append(result)
        return results
    finally:
        servers.drop(source)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="2700", help="comma-separated sizes")
    parser.add_argument("--approaches", default=",".join(APPROACHES))
    parser.add_argument("--destinations", default=",".join(DESTINATIONS))
    parser.add_argument("--report", type=Path, default=ROOT / "bench" / "copy-report.md")
    args = parser.parse_args(argv)
    args.sizes = [int(s.replace("_", "")) for s in args.orders.split(",")]
    args.approaches = args.approaches.split(",")
    args.destinations = args.destinations.split(",")
    unknown = set(args.approaches) - set(APPROACHES) | set(args.destinations) - set(DESTINATIONS)
    if unknown:
        parser.error(f"unknown approach or destination: {', '.join(sorted(unknown))}")
    if not Path(TIME).exists():
        parser.error(f"{TIME} (GNU time) is needed to measure memory: apt-get install time")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setting = copy_report.environment(SERVERS, BENCH_PYTHON)
    results: list[Result] = []
    with Servers() as servers:
        switched = ", ".join(servers.switched) or "nothing"
        setting["switched on by the bench for the run"] = f"{switched} (of local_infile, userstat)"
        for orders in args.sizes:
            results += bench_size(orders, args, servers)
    command = "python -m bench.copy " + " ".join(sys.argv[1:] if argv is None else argv)
    args.report.write_text(copy_report.render(results, setting, command))
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
