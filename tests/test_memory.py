"""Memory is bounded by the chunk size, not by the table size."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

import rowferry
from harness import reference
from rowferry.demo.order_history import migration


def _peak_bytes(url: str) -> int:
    tracemalloc.start()
    try:
        assert rowferry.run(migration, url, chunk_size=100).done
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_six_times_more_rows_do_not_need_more_memory(tmp_path: Path, make_db, kind: str) -> None:  # type: ignore[no-untyped-def]
    warm, small, large = make_db(kind), make_db(kind), make_db(kind)
    for url, orders in ((warm, 1000), (small, 1000), (large, 6000)):
        reference.build(url, orders=orders)
    _peak_bytes(warm)  # warm caches (SQLAlchemy's compiled statements, imports)
    peak_small = _peak_bytes(small)
    peak_large = _peak_bytes(large)
    assert peak_large < peak_small * 1.3, (peak_small, peak_large)
