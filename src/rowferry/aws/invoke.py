"""``python -m rowferry.aws.invoke``: one simulated Lambda invocation, in the process it starts.

:mod:`rowferry.cli.simulate` starts this module once per invocation, with the function's
environment plus:

========================== ==============================================================
``ROWFERRY_SIM_DEADLINE``  when Lambda would kill the invocation (``time.time()`` seconds)
``ROWFERRY_SIM_MEMORY_MB`` the memory limit: applied first thing, as ``RLIMIT_AS``
``ROWFERRY_SIM_RESULT``    the file the handler's result is written to (JSON)
``ROWFERRY_SIM_EVENT``     the event, JSON (default ``{}``, what a schedule sends)
========================== ==============================================================

The memory limit is set here rather than in the parent between fork and exec, so that the
parent may run threads (the latency proxy) and still start children safely; it is in force
before the handler is even imported. The handler is imported after the clock has started, so
imports count against the invocation's time as they do in a cold Lambda start.
"""

from __future__ import annotations

import os
import resource
import sys


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space (virtual memory) at ``megabytes``."""
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """The process's peak resident memory (``VmHWM``) in MB, None once it has exited."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def main() -> int:
    limit_memory(int(os.environ.get("ROWFERRY_SIM_MEMORY_MB", "1024")))
    import json

    from rowferry.aws.context import FakeContext
    from rowferry.aws.handler import handler

    context = FakeContext(
        deadline=float(os.environ["ROWFERRY_SIM_DEADLINE"]),
        memory_limit_in_mb=int(os.environ.get("ROWFERRY_SIM_MEMORY_MB", "1024")),
    )
    result = handler(json.loads(os.environ.get("ROWFERRY_SIM_EVENT") or "{}"), context)
    result["peak_rss_mb"] = peak_rss_mb()
    path = os.environ["ROWFERRY_SIM_RESULT"]
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        json.dump(result, out)
    os.replace(path + ".tmp", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
