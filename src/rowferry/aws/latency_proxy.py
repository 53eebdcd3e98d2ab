"""A TCP proxy on 127.0.0.1 that adds latency, to try a migration over a slow network.

Every chunk of bytes read from one side is written to the other ``delay_ms`` after it arrived,
in both directions, so a database round trip (request, then answer) takes at least
``2 * delay_ms`` longer. Chunks are pipelined (a chunk's delay starts when it arrives, not when
the previous one was written): this models latency, not a narrow bandwidth. The proxy runs an
asyncio loop in a daemon thread, listens on 127.0.0.1 only, and stops after ``lifetime``
seconds at the latest::

    with LatencyProxy("127.0.0.1", 3306, delay_ms=20) as proxy:
        url = proxy.route("mysql+pymysql://root@127.0.0.1:3306/shop")  # via the proxy
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from types import TracebackType

import sqlalchemy as sa

#: Bytes read at once from a socket.
READ_SIZE = 65536


class LatencyProxy:
    def __init__(self, host: str, port: int, delay_ms: float, *, lifetime: float = 3600.0) -> None:
        self.upstream = (host, port)
        self.delay = delay_ms / 1000
        self.lifetime = lifetime
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="latency-proxy", daemon=True)

    def __enter__(self) -> LatencyProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("the latency proxy did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def route(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's."""
        parsed = sa.make_url(url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        pipes: set[asyncio.Task[None]] = set()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            pipes.add(task)
            try:
                await self._connection(reader, writer)
            except asyncio.CancelledError:  # stopping: end quietly (a cancelled callback
                pass  # task makes asyncio log a traceback)
            finally:
                pipes.discard(task)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), self.lifetime)
        server.close()
        for task in list(pipes):
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        finally:
            for w in (client_w, server_w):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy reader to writer, each chunk ``delay`` after it arrived."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            try:
                while data := await reader.read(READ_SIZE):
                    queue.put_nowait((time.monotonic() + self.delay, data))
            except OSError:
                pass
            queue.put_nowait((time.monotonic() + self.delay, b""))

        reading = asyncio.create_task(read())
        try:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass
        finally:
            reading.cancel()
