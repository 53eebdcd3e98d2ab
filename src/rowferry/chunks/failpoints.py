"""Named points in the chunk loop where a test can make the process kill itself (SIGKILL).

``ROWFERRY_FAILPOINTS="before_commit=3"`` kills the process the third time the loop reaches
``before_commit``. The points, in loop order: ``after_read`` (chunk read, nothing written),
``after_write`` (rows written, checkpoint not yet), ``before_commit`` (writes and checkpoint
sent, COMMIT not yet), ``after_commit``. Unset, each check is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = ("after_read", "after_write", "before_commit", "after_commit")


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, count = part.partition("=")
        if name not in POINTS:
            raise ValueError(f"unknown failpoint {name!r}; known: {', '.join(POINTS)}")
        armed[name] = int(count or "1")
    return armed


_armed = _parse(os.environ.get("ROWFERRY_FAILPOINTS", ""))
_seen: Counter[str] = Counter()


def reached(name: str) -> None:
    """Mark that the loop reached ``name``; SIGKILL this process if that point is armed now."""
    if not _armed:
        return
    _seen[name] += 1
    if _armed.get(name) == _seen[name]:
        os.kill(os.getpid(), signal.SIGKILL)
