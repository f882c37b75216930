"""Taking a dependency away under a running server: a TCP proxy on loopback that can be cut
(new connections refused, open ones reset) and restored on the same port; a gateway process whose
log is kept for the test to read."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from benchmarks.common import free_port, until_healthy
from benchmarks.processes import Process


class Proxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:  # the test's loop is closing
            writer.transport.abort()
            up_writer.transport.abort()
        self._writers -= {writer, up_writer}


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port whose socket accepts connections and never answers; yields the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def gateway(database_url: str, log: Path, **env: str) -> AsyncIterator[str]:
    """A ``settlement-gateway serve`` process on loopback, its stderr in ``log``; yields its URL."""
    port = free_port()
    log.write_bytes(b"")
    process = Process(
        ["serve", "--port", str(port)], {"GATEWAY_DATABASE_URL": database_url, **env}, log, stdout=False
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await until_healthy(base, process)
        yield base
    finally:
        await asyncio.to_thread(process.stop, 30)  # the loop keeps serving the proxy meanwhile
