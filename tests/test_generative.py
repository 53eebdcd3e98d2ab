"""The guarantee on generated inputs: every case exact, or refused before its first write.

Runs :data:`CASES` cases of :mod:`tests.fuzz` round-robin over every (source, target) pair of
SQLite, MariaDB and PostgreSQL (one database, or two), from a fixed seed, so that a failure
reproduces; ``ROWFERRY_FUZZ_SEED`` picks other cases. A failure prints each failed case's
reproduction. ``python -m tests.fuzz --cases 50000`` is the soak.
"""

from __future__ import annotations

import os

import pytest

from tests.fuzz import cases
from tests.fuzz.__main__ import run

CASES = int(os.environ.get("ROWFERRY_FUZZ_CASES", "2007"))
SEED = int(os.environ.get("ROWFERRY_FUZZ_SEED", "21"))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_generated_cases_are_exact_or_refused() -> None:
    failures = run(CASES, SEED, cases.PAIRS, show=0)
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n\n" + "\n\n".join(
        failures[:10]
    )
