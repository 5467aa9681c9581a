"""A link with a round trip, on 127.0.0.1: a TCP proxy that delays every byte, for the benchmark.

    with LatencyProxy(target_port, rtt=0.050) as proxy:
        ... connect to 127.0.0.1:proxy.port ...

Each chunk read from one side is written to the other half a round trip later (order kept), in both
directions, so a request and its reply cost one round trip as on a real link. The server's first bytes
(an SMTP greeting, a TLS server hello on an implicit-TLS port) wait one round trip more: on a real link
the TCP handshake costs that before the server can say anything, and on loopback the handshake is free.

It runs its own asyncio loop in a thread of the benchmark process. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading

LOOPBACK = "127.0.0.1"
CHUNK = 65536


class LatencyProxy:
    def __init__(self, target_port: int, rtt: float, host: str = LOOPBACK):
        self.target = (host, target_port)
        self.rtt = rtt
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="latency-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(timeout=10)
        return self

    def __exit__(self, *exc) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        half = self.rtt / 2
        # client -> server: half a round trip; server -> client: half, and one round trip more before
        # its first bytes (the TCP handshake, free on loopback).
        try:
            ends = await asyncio.gather(
                self._pump(client_reader, server_writer, half, first_extra=0.0),
                self._pump(server_reader, client_writer, half, first_extra=self.rtt),
                return_exceptions=True,
            )
            loop = asyncio.get_running_loop()
            last = max((end for end in ends if isinstance(end, float)), default=loop.time())
            await asyncio.sleep(max(0.0, last - loop.time()) + 0.001)  # the last delayed bytes go out first
        except asyncio.CancelledError:
            pass
        finally:
            for writer in (client_writer, server_writer):
                writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, first_extra: float
    ) -> float:
        """Copy reader to writer, each chunk `delay` seconds after it was read (the first one
        `first_extra` later still); the end of the stream is passed on the same way. Returns the loop
        time of the last thing it scheduled."""
        loop = asyncio.get_running_loop()
        extra = first_extra
        last = 0.0
        try:
            while True:
                chunk = await reader.read(CHUNK)
                due = max(loop.time() + delay + extra, last)  # never before an earlier chunk: order kept
                extra, last = 0.0, due
                if not chunk:
                    loop.call_at(due, _end, writer)
                    return due
                loop.call_at(due, _write, writer, chunk)
        except (ConnectionError, OSError):
            loop.call_at(max(loop.time(), last), writer.close)
            return last


def _write(writer: asyncio.StreamWriter, chunk: bytes) -> None:
    if not writer.is_closing():
        writer.write(chunk)


def _end(writer: asyncio.StreamWriter) -> None:
    if writer.is_closing():
        return
    try:
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except OSError:
        writer.close()
