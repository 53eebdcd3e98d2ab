"""A Lambda simulator: invoke the handler the way a schedule does, under Lambda's limits.

Each invocation is a fresh process (``python -m rowferry.aws.invoke``) with a fake context
whose remaining time counts down from the timeout, starting when the process starts (imports
count, as in a cold start). At the timeout the process is killed with SIGKILL, as Lambda kills
a function that overruns. The memory limit is the process's address space (``RLIMIT_AS``), set
before the handler is imported: an allocation beyond it fails with ``MemoryError``. That is
stricter than Lambda, which counts resident memory, so a run that passes here fits Lambda's
limit too. What is reported is the peak *resident* memory (``VmHWM``), comparable to Lambda's
"Max Memory Used".

Invocations follow each other until the migration is done, one fails, three in a row end without
a result (killed or crashed), or ``max_invocations`` is reached. ``kill={2: 1.5}`` kills the
second invocation 1.5 s after it starts, to show that a kill loses nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rowferry.aws.invoke import peak_rss_mb
from rowferry.cli.plain import plain_table

#: Give up after this many invocations in a row without a result (killed or crashed).
MAX_FAILURES_IN_A_ROW = 3
#: How often the parent samples the child's peak memory and checks the clock.
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Limits:
    """Lambda's limits for one invocation: timeout (seconds) and memory (MB)."""

    timeout: float = 30.0
    memory_mb: int = 1024


@dataclass(frozen=True)
class Invocation:
    """How one invocation went. ``killed`` is ``"timeout"``, ``"on purpose"`` or None."""

    number: int
    status: str  # done, more, paused, cancelled, failed, killed, crashed
    seconds: float
    peak_rss_mb: float | None
    killed: str | None = None
    exit_code: int = 0
    result: dict[str, Any] | None = None
    log_tail: str = ""

    @property
    def rows(self) -> int:
        return int(self.result.get("rows", 0)) if self.result else 0

    @property
    def chunks(self) -> int:
        return int(self.result.get("chunks", 0)) if self.result else 0

    @property
    def budget_used(self) -> float | None:
        """The trip's share of its budget (0..1), None when no trip ran."""
        budget = (self.result or {}).get("budget_seconds")
        if not budget or not self.result or not self.result.get("chunks"):
            return None
        return float(self.result["seconds"]) / float(budget)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rows": self.rows, "budget_used": self.budget_used}


@dataclass
class Simulation:
    limits: Limits
    invocations: list[Invocation] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return bool(self.invocations) and self.invocations[-1].status == "done"

    @property
    def killed_by_timeout(self) -> list[Invocation]:
        return [i for i in self.invocations if i.killed == "timeout"]

    @property
    def rows(self) -> int:
        return sum(i.rows for i in self.invocations)

    @property
    def peak_rss_mb(self) -> float | None:
        peaks = [i.peak_rss_mb for i in self.invocations if i.peak_rss_mb is not None]
        return max(peaks) if peaks else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "limits": asdict(self.limits),
            "done": self.done,
            "invocations": [i.as_dict() for i in self.invocations],
            "rows": self.rows,
            "killed_by_timeout": len(self.killed_by_timeout),
            "peak_rss_mb": self.peak_rss_mb,
        }


def simulate(
    env: Mapping[str, str],
    limits: Limits = Limits(),
    *,
    max_invocations: int = 1000,
    kill: Mapping[int, float] | None = None,
    interval: float = 0.0,
    log_dir: Path | None = None,
    on_invocation: Callable[[Invocation], None] | None = None,
) -> Simulation:
    """Invoke the handler (configured by ``env``, the function's environment) until done.

    ``interval``: seconds between the starts of two invocations (0: back to back).
    """
    sim = Simulation(limits)
    in_a_row = 0
    while len(sim.invocations) < max_invocations and in_a_row < MAX_FAILURES_IN_A_ROW:
        started = time.monotonic()
        number = len(sim.invocations) + 1
        inv = invoke(env, limits, number, (kill or {}).get(number), log_dir)
        sim.invocations.append(inv)
        if on_invocation is not None:
            on_invocation(inv)
        if inv.status in ("done", "paused", "cancelled", "failed"):
            break
        in_a_row = in_a_row + 1 if inv.result is None else 0
        time.sleep(max(0.0, started + interval - time.monotonic()))
    return sim


def invoke(
    env: Mapping[str, str],
    limits: Limits,
    number: int = 1,
    kill_after: float | None = None,
    log_dir: Path | None = None,
) -> Invocation:
    """One invocation in a fresh process, SIGKILLed at the timeout (or at ``kill_after``)."""
    with tempfile.TemporaryDirectory(prefix="rowferry-sim-") as tmp:
        result_path = Path(tmp) / "result.json"
        log_path = (log_dir or Path(tmp)) / f"invocation-{number:04d}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            exit_code, killed, seconds, peak = _run_child(
                _child_env(env, limits, result_path), limits, kill_after, log
            )
        result = json.loads(result_path.read_text()) if result_path.exists() else None
        tail = "" if result and result["status"] != "failed" else _tail(log_path)
    if result is not None:
        peak = max(peak or 0.0, result.pop("peak_rss_mb", None) or 0.0) or None
    status = "killed" if killed else (result["status"] if result else "crashed")
    return Invocation(number, status, seconds, peak, killed, exit_code, result, tail)


def _child_env(env: Mapping[str, str], limits: Limits, result_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        **env,
        "ROWFERRY_SIM_DEADLINE": repr(time.time() + limits.timeout),
        "ROWFERRY_SIM_MEMORY_MB": str(limits.memory_mb),
        "ROWFERRY_SIM_RESULT": str(result_path),
        "PYTHONUNBUFFERED": "1",
    }


def _run_child(
    env: dict[str, str], limits: Limits, kill_after: float | None, log: Any
) -> tuple[int, str | None, float, float | None]:
    """Run the child to its end or its kill: (exit code, killed why, seconds, peak RSS MB)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rowferry.aws.invoke"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    on_purpose = kill_after is not None and kill_after < limits.timeout
    kill_at = started + (kill_after if on_purpose and kill_after is not None else limits.timeout)
    peak = 0.0
    killed: str | None = None
    while proc.poll() is None:
        peak = max(peak, peak_rss_mb(proc.pid) or 0.0)
        now = time.monotonic()
        if now >= kill_at:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = "on purpose" if on_purpose else "timeout"
            break
        time.sleep(min(POLL_SECONDS, kill_at - now))
    return proc.returncode, killed, time.monotonic() - started, peak or None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def render(sim: Simulation, *, markdown: bool = False) -> str:
    """The per-invocation table and the totals, as text or as a Markdown table."""
    head = ["#", "status", "rows", "chunks", "duration s", "budget used", "peak RSS MB", "killed"]
    rows = [
        [
            str(i.number),
            i.status,
            f"{i.rows:,}",
            str(i.chunks),
            f"{i.seconds:.2f}",
            "-" if i.budget_used is None else f"{100 * i.budget_used:.0f} %",
            "-" if i.peak_rss_mb is None else f"{i.peak_rss_mb:.0f}",
            i.killed or "no",
        ]
        for i in sim.invocations
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        lines = plain_table(head, [tuple(r) for r in rows], frozenset(range(len(head))))
    return "\n".join([*lines, "", summary(sim)])


def summary(sim: Simulation) -> str:
    used = [i.budget_used for i in sim.invocations if i.budget_used is not None]
    full = [i.budget_used for i in sim.invocations if i.status == "more" and i.budget_used]
    peak = sim.peak_rss_mb
    return (
        f"{'done' if sim.done else 'NOT done'} after {len(sim.invocations)} invocation(s) of "
        f"{sim.limits.timeout:g} s / {sim.limits.memory_mb} MB: {sim.rows:,} rows, "
        f"{len(sim.killed_by_timeout)} killed by the timeout, "
        f"{sum(1 for i in sim.invocations if i.killed == 'on purpose')} killed on purpose; "
        f"budget used by full invocations: min {100 * min(full or used or [0]):.0f} %; "
        f"peak RSS {'-' if peak is None else f'{peak:.0f} MB'}"
    )
