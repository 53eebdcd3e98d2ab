"""Checking a migration's target against its source, without trusting the state table.

``from rowferry.verify import verify`` is the library form of ``rowferry verify``; the function
lives in :mod:`rowferry.verify.check` and is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rowferry.verify.check import verify

__all__ = ["verify"]


def __getattr__(name: str) -> Any:
    if name != "verify":
        raise AttributeError(f"module 'rowferry.verify' has no attribute {name!r}")
    return importlib.import_module("rowferry.verify.check").verify
