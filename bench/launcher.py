"""A small process that starts the benchmark's children, so that their peak RSS is their own.

On Linux a process's ``ru_maxrss`` starts from the peak RSS of the memory image it was forked
from (``fork`` copies the parent's high-water mark and ``exec`` keeps it), so a child forked from
the driver, which holds the expected documents, would never report less than the driver's own
peak. This launcher stays small (no import beyond the standard library), forks every child and
reads its ``ru_maxrss`` with ``os.wait4``.

Protocol: one JSON line per request on stdin, ``{"argv": [...], "timeout": seconds}``; one JSON
line per answer on stdout, ``{"returncode", "stdout", "stderr", "maxrss_kb"}`` (``stderr``: its
last 2,000 characters). The launcher ends at the end of its input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from typing import Any


def launch(argv: list[str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            assert proc.stdout is not None
            out = proc.stdout.read().decode(errors="replace")
            proc.stdout.close()
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        stderr.seek(0)
        err = stderr.read().decode(errors="replace")[-2000:]
    return {
        "returncode": proc.returncode,
        "stdout": out,
        "stderr": err,
        "maxrss_kb": usage.ru_maxrss,
    }


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        answer = launch(request["argv"], float(request["timeout"]))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
