"""A trip runs with fewer garbage collections and leaves the collector as it found it; cycles a
transform leaves behind are still collected chunk by chunk."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rowferry
from harness import reference
from rowferry import defaults
from rowferry.demo.order_history import migration
from rowferry.errors import SchemaError


@pytest.fixture
def url(make_db) -> str:  # type: ignore[no-untyped-def]
    built = str(make_db("sqlite"))
    reference.build(built, orders=1500)
    return built


@pytest.fixture
def settings() -> Iterator[None]:
    """The test's own collector settings are put back whatever happens."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def _thresholds_during_run(url: str) -> list[tuple[int, int, int]]:
    seen: list[tuple[int, int, int]] = []
    result = rowferry.run(
        migration, url, chunk_size=200, on_chunk=lambda _: seen.append(gc.get_threshold())
    )
    assert result.done
    return seen


@pytest.mark.usefixtures("settings")
def test_a_trip_raises_the_young_threshold_and_puts_it_back(url: str) -> None:
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    seen = _thresholds_during_run(url)
    assert seen and set(seen) == {(defaults.GC_YOUNG_THRESHOLD, 10, 10)}
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("settings")
def test_a_higher_threshold_of_the_application_is_kept(url: str) -> None:
    gc.set_threshold(1_000_000, 20, 5)
    assert set(_thresholds_during_run(url)) == {(1_000_000, 20, 5)}
    assert gc.get_threshold() == (1_000_000, 20, 5)


@pytest.mark.usefixtures("settings")
def test_a_disabled_collector_stays_disabled(url: str) -> None:
    gc.disable()
    enabled: list[bool] = []
    rowferry.run(migration, url, chunk_size=200, on_chunk=lambda _: enabled.append(gc.isenabled()))
    assert enabled and not any(enabled)
    assert not gc.isenabled()


@pytest.mark.usefixtures("settings")
def test_the_settings_come_back_when_the_trip_fails(url: str) -> None:
    gc.set_threshold(700, 10, 10)
    broken = rowferry.Migration(
        name="broken", source="no_such_table", target=rowferry.Target("order_history")
    )
    with pytest.raises(SchemaError):
        rowferry.run(broken, url)
    assert gc.get_threshold() == (700, 10, 10)


class _Node:
    """Points back at itself: freed only by the cyclic collector."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.me = self


@pytest.mark.usefixtures("settings")
def test_cycles_a_transform_leaves_are_collected_chunk_by_chunk(url: str, tmp_path: Path) -> None:
    """Each root row leaves a 20 KB cycle behind. Collected only at the young threshold
    (100,000 containers) they pile up (a 20 MB peak when this test was written, without the
    collection after each chunk); collected after each chunk of 100 rows, at most a few
    chunks' worth is alive at once (4 MB)."""
    gc.set_threshold(700, 10, 10)

    def leaky(row: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
        _Node(bytes(20_000))
        return migration.transform(row, related)  # type: ignore[misc]

    leaking = rowferry.Migration(
        name="leaky",
        source=migration.source,
        where=migration.where,
        params=migration.params,
        relations=migration.relations,
        target=migration.target,
        transform=leaky,
    )
    tracemalloc.start()
    try:
        assert rowferry.run(leaking, url, chunk_size=100).done
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12_000_000, peak


def _collections_between_chunks(url: str) -> list[str]:
    """Which collections ran after each chunk of a trip of 40-row chunks."""
    gc.set_threshold(700, 10, 10)
    events: list[str] = []

    def collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            events.append(f"gc{info['generation']}")

    gc.callbacks.append(collection)
    try:
        rowferry.run(migration, url, chunk_size=40, on_chunk=lambda _: events.append("chunk"))
    finally:
        gc.callbacks.remove(collection)
    chunks = events.count("chunk")
    assert chunks >= 2 * defaults.GC_FULL_EVERY_CHUNKS
    # what ran between the end of the previous chunk and the report of each chunk
    between = "|".join(events).split("chunk")[:chunks]
    assert all("gc0" in part or "gc2" in part for part in between)  # one after each chunk
    return between


@pytest.mark.usefixtures("settings")
def test_a_full_collection_runs_after_every_tenth_chunk_when_time_allows(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defaults, "GC_FULL_MAX_SHARE", 1e9)  # any time since the last is enough
    between = _collections_between_chunks(url)
    full = [i + 1 for i, part in enumerate(between) if "gc2" in part]
    every = defaults.GC_FULL_EVERY_CHUNKS
    assert [n for n in full if n % every == 0] == list(range(every, len(between) + 1, every))


@pytest.mark.usefixtures("settings")
def test_full_collections_are_spaced_to_a_share_of_the_time(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first full collection (tenth chunk), the next waits until the time since it is
    at least its own duration over the share: here a millionth, so not within this trip."""
    monkeypatch.setattr(defaults, "GC_FULL_MAX_SHARE", 1e-6)
    between = _collections_between_chunks(url)
    ours = [i + 1 for i, part in enumerate(between) if part.endswith("gc2|")]
    assert ours == [defaults.GC_FULL_EVERY_CHUNKS]
