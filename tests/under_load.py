"""Run a command beside CPU hogs: ``python -m tests.under_load [--hogs N] COMMAND ...``.

Starts ``N`` processes (one per core by default) that keep a core busy at the same priority as
the command, runs the command, stops the hogs and exits with the command's status. The test
suite must pass this way: ``python -m tests.under_load python -m pytest``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys


def _spin() -> None:
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.under_load", description=__doc__)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if not args.command:
        parser.error("give the command to run")
    hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    try:
        return subprocess.call(args.command)
    finally:
        for hog in hogs:
            hog.kill()
            hog.join()


if __name__ == "__main__":
    sys.exit(main())
