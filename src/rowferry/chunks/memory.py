"""How much Python memory a chunk's rows take: measured on a sample of each chunk, so that
``"auto"`` sizing keeps a chunk's rows within its memory budget (see
:mod:`rowferry.engine.sizing`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

#: root rows measured per chunk
_SAMPLE = 20


def bytes_per_row(rows: Sequence[Any], related: Sequence[Any]) -> float | None:
    """Python memory of one root row with its related rows, from a sample of the chunk."""
    if not rows:
        return None
    sample = min(len(rows), _SAMPLE)
    total = sum(_size(rows[i]) + (_size(related[i]) if related else 0) for i in range(sample))
    return total / sample


def _size(value: Any) -> int:
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(_size(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sys.getsizeof(value) + sum(_size(v) for v in value)
    return sys.getsizeof(value)
