"""A loopback TCP chaos proxy for the control-plane resilience gates.

Each accepted connection is numbered from 1. Every ``drop_every``-th one is closed at once
(nothing is dialed upstream); every other one waits ``delay`` seconds **before** dialing the
upstream, then bytes are piped both ways in 64 KiB reads until either side closes. It is the
original ``tcp-chaos-proxy.py`` (reference §8) with both sides restricted to loopback: the gates
never send traffic off the machine.

    async with ChaosProxy(("127.0.0.1", master_port), delay=0.7, drop_every=5) as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from types import TracebackType

__all__ = ["ChaosProxy"]

_CHUNK = 64 * 1024


def _require_loopback(host: str, what: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"chaos proxy {what} must be a loopback IP literal, got {host!r}")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class ChaosProxy:
    """Delay every new connection by ``delay`` seconds; close every ``drop_every``-th (0 = none)."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        delay: float = 0.7,
        drop_every: int = 0,
        listen: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        if delay < 0:
            raise ValueError("delay must be >= 0")
        if drop_every < 0:
            raise ValueError("drop_every must be >= 0 (0 = never drop)")
        _require_loopback(upstream[0], "upstream")
        _require_loopback(listen[0], "listen address")
        self.upstream = upstream
        self.delay = delay
        self.drop_every = drop_every
        self._listen = listen
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: connections accepted / closed at once / piped to the upstream / failed to dial upstream
        self.accepted = 0
        self.dropped = 0
        self.forwarded = 0
        self.upstream_errors = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, *self._listen)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ChaosProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # close(): the handler task ends here (re-raising would only be logged)
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.drop_every and self.accepted % self.drop_every == 0:
            self.dropped += 1
            return
        await asyncio.sleep(self.delay)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.upstream_errors += 1
            return
        self.forwarded += 1
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await up_writer.wait_closed()
