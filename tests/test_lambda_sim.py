"""The Lambda simulator, and through it the handler under Lambda's limits (a scaled-down proof).

The full-size proof (100,000 orders, 30 s / 1024 MB) is ``python -m bench.lambda_proof``; here
the same properties are checked on 48,000 orders (about 28,700 snapshots) with a timeout of 3 s,
or more where starting Python takes long (:func:`machine_limits`; safety margin 0.75 s), and
512 MB: every invocation is a fresh process SIGKILLed at its timeout,
none is killed, every invocation that stops for time stopped only because its next chunk, as
predicted, would not fit in what was left (at this scale one chunk of 250 can be a quarter of a
1.4 s budget on a slow machine; the full-size proof shows 96 % and more of the budget used), the
peak resident memory of each is reported, and at the end every finished order has exactly one
correct snapshot. Then the same through a proxy adding 20 ms to every packet in each direction
(10 s timeout), and with an invocation SIGKILLed in the middle on purpose.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from harness import reference
from harness.databases import create_database, drop_database
from rowferry.aws.latency_proxy import LatencyProxy
from rowferry.cli.main import main
from rowferry.cli.simulate import Invocation, Limits, Simulation, simulate
from rowferry.demo import order_history
from rowferry.state import store

ORDERS = 48_000
MIGRATION = "rowferry.demo.order_history:migration"
SLOW_LIMITS = Limits(timeout=10.0, memory_mb=512)  # 20 ms per packet: chunks of 1,000


@functools.cache
def machine_limits() -> Limits:
    """3 s for an invocation (28,711 snapshots are a few seconds of work), or more where a
    fresh process takes long to import the handler and the migration. Lambda's timeout counts
    that start-up; past about 1.25 s of it, 3 s would leave less than the handler's minimum
    budget of 1 s after the 0.75 s margin, and invocations would end without a trip (seen on
    a slow machine: 1.2-1.5 s). The start-up is timed twice here and its longer time counted
    twice, for the variation between processes."""
    code = "import rowferry.aws.handler, rowferry.demo.order_history"
    times = []
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return Limits(timeout=round(max(3.0, 2.25 + 2 * max(times)), 2), memory_mb=512)


class Workload:
    """One reference workload per server for this module; each test starts from no snapshots."""

    def __init__(self, url: str) -> None:
        self.url = url
        reference.build(url, orders=ORDERS)
        self.expected = reference.expected_snapshots(url)

    def start_over(self) -> None:
        reference.start_over(self.url)

    def env(self, url: str | None = None, *, chunk_size: int = 250) -> dict[str, str]:
        return {
            "ROWFERRY_MIGRATION": MIGRATION,
            "ROWFERRY_SOURCE": url or self.url,
            "ROWFERRY_SAFETY_MARGIN": "0.75",
            "ROWFERRY_CHUNK_SIZE": str(chunk_size),
        }


@pytest.fixture(scope="module", params=["mariadb", "postgresql"])
def workload(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workload]:
    url = create_database(str(request.param), tmp_path_factory.mktemp("sim"))
    try:
        yield Workload(url)
    finally:
        drop_database(url)


@pytest.fixture
def fresh(workload: Workload) -> Workload:
    workload.start_over()
    return workload


def assert_exactly_once(workload: Workload, sim: Simulation) -> None:
    assert sim.done, _describe(sim)
    assert reference.snapshots(workload.url) == workload.expected
    last = sim.invocations[-1].result
    assert last is not None and last["rows_done"] == last["rows_total"] == len(workload.expected)
    if not any(i.killed for i in sim.invocations):
        assert sum(i.rows for i in sim.invocations) == len(workload.expected)


def assert_within_limits(sim: Simulation, limits: Limits) -> None:
    assert not sim.killed_by_timeout, _describe(sim)
    for inv in sim.invocations:
        assert inv.peak_rss_mb is not None and 20 < inv.peak_rss_mb < limits.memory_mb
        assert inv.seconds < limits.timeout
        if inv.status == "more" and inv.killed is None:
            assert_stopped_only_for_the_next_chunk(inv, sim)


def assert_stopped_only_for_the_next_chunk(inv: Invocation, sim: Simulation) -> None:
    """What the trip left of its budget is explained by its next chunk's predicted time: it
    did not stop early (a small slack for the clock read between the prediction and the end).
    A floor of half the budget still catches a gross waste, whatever this machine's speed."""
    assert inv.result is not None and inv.budget_used is not None, _describe(sim)
    assert str(inv.result["reason"]).startswith("time budget:"), _describe(sim)
    need = inv.result["next_chunk_seconds"]
    budget, used = float(inv.result["budget_seconds"]), float(inv.result["seconds"])
    assert need is not None, _describe(sim)
    assert need + 0.01 >= budget - used, _describe(sim)  # the trip's seconds end a bit later
    assert inv.budget_used + need / budget >= 0.95, _describe(sim)
    assert inv.budget_used >= 0.5, _describe(sim)


def _describe(sim: Simulation) -> str:
    return "\n".join(f"{i.number}: {i.status} {i.result} {i.log_tail}" for i in sim.invocations)


def test_reference_workload_fits_lambda_limits(fresh: Workload) -> None:
    sim = simulate(fresh.env(), machine_limits(), max_invocations=40)
    assert len(sim.invocations) >= 2, _describe(sim)
    assert_within_limits(sim, machine_limits())
    assert_exactly_once(fresh, sim)


def test_with_20_ms_per_packet_no_invocation_is_killed(fresh: Workload) -> None:
    server = sa.make_url(fresh.url)
    with LatencyProxy(server.host or "127.0.0.1", server.port or 0, delay_ms=20) as proxy:
        sim = simulate(
            fresh.env(proxy.route(fresh.url), chunk_size=1000), SLOW_LIMITS, max_invocations=20
        )
    assert len(sim.invocations) >= 2, _describe(sim)
    assert_within_limits(sim, SLOW_LIMITS)
    assert_exactly_once(fresh, sim)


def test_an_invocation_killed_in_the_middle_loses_nothing(fresh: Workload) -> None:
    seen: list[dict[str, Any]] = []

    def committed(inv: Invocation) -> None:
        engine = sa.create_engine(fresh.url)
        with engine.connect() as conn:
            saved = store.read(conn, order_history.migration.name)
            count = conn.exec_driver_sql("SELECT COUNT(*) FROM order_snapshots").scalar_one()
        engine.dispose()
        seen.append({"status": inv.status, "rows": count, "saved": saved})

    limits = machine_limits()
    kill = {1: limits.timeout / 2}  # in the middle of its trip
    sim = simulate(fresh.env(), limits, kill=kill, max_invocations=40, on_invocation=committed)
    killed = sim.invocations[0]
    assert killed.killed == "on purpose" and killed.result is None
    after_kill = seen[0]  # killed in the middle of a trip: its lease is still there
    assert after_kill["saved"] is not None and after_kill["saved"].status == "running"
    assert after_kill["rows"] == after_kill["saved"].rows_written > 0
    assert sim.invocations[1].result is not None  # the next one took the dead run's lease
    for step in seen:
        assert step["rows"] == step["saved"].rows_written
    assert_exactly_once(fresh, sim)


def _module(tmp_path: Path, name: str, code: str) -> dict[str, str]:
    (tmp_path / f"{name}.py").write_text(code)
    return {"ROWFERRY_MIGRATION": f"{name}:migration", "PYTHONPATH": str(tmp_path)}


def test_an_invocation_past_its_timeout_is_killed(tmp_path: Path) -> None:
    env = _module(tmp_path, "stuck_migration", "import time\ntime.sleep(60)\n")
    env["ROWFERRY_SOURCE"] = "sqlite:///nowhere.sqlite"
    sim = simulate(env, Limits(timeout=1.5, memory_mb=512), max_invocations=5)
    assert [i.killed for i in sim.invocations] == ["timeout"] * 3  # gives up after 3 in a row
    assert all(1.5 <= i.seconds < 3 and i.result is None for i in sim.invocations)
    assert not sim.done


def test_the_memory_limit_is_enforced(tmp_path: Path) -> None:
    env = _module(tmp_path, "hog_migration", "hog = bytearray(400 * 1024 * 1024)\n")
    env["ROWFERRY_SOURCE"] = "sqlite:///nowhere.sqlite"
    sim = simulate(env, Limits(timeout=10, memory_mb=300), max_invocations=1)
    inv = sim.invocations[0]
    assert inv.status == "failed" and inv.result is not None
    assert "MemoryError" in inv.result["reason"]
    assert inv.peak_rss_mb is not None and inv.peak_rss_mb < 300


def test_the_simulate_command_reports_each_invocation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    reference.build(url, orders=300)
    args = ["lambda", "simulate", MIGRATION, "--source", url, "--timeout", "5s"]
    args += ["--memory", "512", "--safety-margin", "1s", "--kill", "1:0.2"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "killed on purpose" in done.output and "0 killed by the timeout" in done.output
    assert "invocation 1: killed, 0 rows" in done.output
    assert "invocation 2: done, 179 rows" in done.output
    assert reference.snapshots(url) == reference.expected_snapshots(url)


def test_simulate_without_the_aws_extra_says_how_to_install_it(tmp_path: Path) -> None:
    """A Python where ``aws_lambda_powertools`` cannot be imported: one line, no traceback."""
    code = (
        "import sys\nsys.modules['aws_lambda_powertools'] = None\n"
        "from rowferry.cli.main import main\nmain(sys.argv[1:])\n"
    )
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    command = [sys.executable, "-c", code, "lambda", "simulate", MIGRATION, "--source", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "Error: the Lambda handler needs the 'aws' extra, which is not installed: "
        "pip install 'rowferry[aws]'"
    ]


def test_simulate_refuses_a_timeout_that_leaves_no_time_for_a_chunk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    args = ["lambda", "simulate", MIGRATION, "--source", url, "--timeout", "3s"]
    result = CliRunner().invoke(main, [*args, "--safety-margin", "3s"])
    assert result.exit_code == 2, result.output
    assert "--timeout 3s minus the handler's --safety-margin of 3s leaves 0 s" in result.output
    assert "invocation 1" not in result.output
