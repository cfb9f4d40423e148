"""A TCP proxy in front of a server, whose connections a test can cut.

It runs its own asyncio loop in a thread, so blocking and async tests use it
alike. With ``tls`` it terminates TLS (offering HTTP/2 by ALPN) and forwards
plaintext, which lets tests prove the SDK's TLS settings against the real,
plaintext-only server.
"""

from __future__ import annotations

import asyncio
import ssl
import threading

from tests.support.server import free_port


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream`` (``host:port``).

    Args:
        upstream: where to forward to.
        tls: server-side TLS context; None forwards plaintext.
    """

    def __init__(self, upstream: str, tls: ssl.SSLContext | None = None) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._tls = tls
        self.port = free_port()
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy",
                                        daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def target(self) -> str:
        """GRPC target of the proxy."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        """Start listening."""
        self._thread.start()
        self._run(self._listen())
        return self

    def cut(self) -> None:
        """Close every open connection (both sides); keep listening for new ones."""
        self._run(self._close_all())

    def stop(self) -> None:
        """Close everything and end the loop's thread."""
        if not self._thread.is_alive():
            return
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port,
                                                  ssl=self._tls)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass  # the other side went away, or the test cut the connection
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _close_all(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()
        self._writers.clear()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._close_all()
        if self._server is not None:
            await self._server.wait_closed()
