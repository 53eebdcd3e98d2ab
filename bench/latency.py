"""A latency proxy accurate below a millisecond, and a measure of what a proxy adds.

``rowferry.aws.latency_proxy.LatencyProxy`` waits with ``asyncio.sleep``; its event loop's epoll
timeouts are whole milliseconds, so ``delay_ms=0.5`` adds about 3 ms per round trip on this
machine, not 1 ms. ``ThreadProxy`` has the same interface and semantics (each chunk is written
``delay_ms`` after it arrived, in both directions, chunks pipelined) with threads and
``time.sleep``, which sleeps to within tens of microseconds. ``added_ms`` measures what a proxy
adds to a ``SELECT 1`` round trip, for the report.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import sqlalchemy as sa

READ_SIZE = 65536


class ThreadProxy:
    """TCP proxy on 127.0.0.1 adding ``delay_ms`` each way (so ``2 * delay_ms`` per round trip)."""

    def __init__(self, host: str, port: int, delay_ms: float) -> None:
        self.upstream = (host, port)
        self.delay = delay_ms / 1000
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()

    def __enter__(self) -> ThreadProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def route(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's."""
        parsed = sa.make_url(url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.upstream)
            except OSError:
                return
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            self._pipe(client, server)
            self._pipe(server, client)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

        def read() -> None:
            data = b"x"
            while data:
                try:
                    data = source.recv(READ_SIZE)
                except OSError:
                    data = b""
                chunks.put((time.monotonic() + self.delay, data))

        def write() -> None:
            while True:
                due, data = chunks.get()
                time.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    break
                try:
                    sink.sendall(data)
                except OSError:
                    break
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()


def round_trip_ms(url: str, trips: int = 300) -> float:
    """Mean milliseconds of a ``SELECT 1`` on one connection to ``url``."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()
            started = time.perf_counter()
            for _ in range(trips):
                conn.exec_driver_sql("SELECT 1").scalar()
            return (time.perf_counter() - started) * 1000 / trips
    finally:
        engine.dispose()


def added_ms(url: str, make_proxy: Callable[[str, int, float], Any], delay_ms: float) -> float:
    """What ``make_proxy(host, port, delay_ms)`` adds to a round trip to ``url``, in ms."""
    parsed = sa.make_url(url)
    direct = round_trip_ms(url)
    with make_proxy(parsed.host or "127.0.0.1", parsed.port or 0, delay_ms) as proxy:
        return round_trip_ms(proxy.route(url)) - direct


def calibrate(url: str, round_trip_ms: float) -> tuple[float, float]:
    """The ``ThreadProxy`` delay each way that adds about ``round_trip_ms`` to a round trip to
    ``url`` (the proxy's own hop and the sleeps' overshoot count in it), and what it adds."""
    half = round_trip_ms / 2
    first = added_ms(url, ThreadProxy, half)
    delay = max(0.0, half - (first - round_trip_ms) / 2)
    return delay, added_ms(url, ThreadProxy, delay)
