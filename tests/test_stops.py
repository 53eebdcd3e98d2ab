"""Stop conditions: a chunk predicted to overrun the budget is not started."""

from __future__ import annotations

from rowferry.engine.stops import (
    ChunkTimer,
    Deadline,
    MaxChunks,
    Progress,
    SignalStop,
    first_reason,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_refuses_a_chunk_predicted_to_overrun() -> None:
    clock = FakeClock()
    deadline = Deadline(10.0, clock=clock)
    progress = Progress(started=100.0, next_chunk_seconds=2.0)
    clock.now = 107.9  # 2.1 s left, 2.0 s needed
    assert deadline(progress) is None
    clock.now = 108.1  # 1.9 s left
    reason = deadline(progress)
    assert reason is not None and "next chunk needs ~2.00 s" in reason


def test_deadline_without_a_prediction_stops_only_when_time_is_up() -> None:
    clock = FakeClock()
    deadline = Deadline(1.0, clock=clock)
    assert deadline(Progress(started=100.0)) is None
    clock.now = 101.0
    assert deadline(Progress(started=100.0)) is not None


def test_timer_predicts_from_the_slowest_recent_chunk_with_a_margin() -> None:
    timer = ChunkTimer(chunk_size=100)
    assert timer.predict() is None
    for seconds in (0.10, 0.30, 0.20):
        timer.record(seconds, 100)
    assert timer.predict() == 0.30 * 1.5


def test_timer_uses_the_rate_stored_by_earlier_trips_before_its_first_chunk() -> None:
    timer = ChunkTimer(chunk_size=1000, seconds_per_row=0.002)
    assert timer.predict() == 0.002 * 1000 * 1.5


def test_max_chunks_and_first_reason() -> None:
    progress = Progress(started=0.0, chunks=3)
    assert first_reason([MaxChunks(5)], progress) is None
    assert first_reason([MaxChunks(5), MaxChunks(3)], progress) == "chunk limit: 3 chunks done"


def test_a_first_signal_asks_for_a_warm_stop() -> None:
    import os
    import signal

    stop = SignalStop()
    with stop.installed():
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop(Progress(started=0.0)) == "signal: SIGTERM received"
