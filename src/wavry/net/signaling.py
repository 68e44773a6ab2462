"""Signaling client: one bound WebSocket to the gateway's ``/ws`` and a reconnecting loop.

Speaks the gateway's only dialect (``wavry.gateway.signaling.messages``: the same models, parser
and serializer; docs/signaling.md). Every wait is bounded; reconnection uses capped, jittered
exponential backoff; a refused token or a replaced session stops the loop (retrying cannot fix
those). The token is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection

from wavry.gateway.signaling.messages import (
    MAX_FRAME_BYTES,
    Bind,
    Bound,
    ErrorCode,
    ErrorMsg,
    SignalingError,
    SignalingMessage,
    dump,
    parse_server,
)

__all__ = [
    "Backoff",
    "SignalingFatal",
    "SignalingSession",
    "run_signaling",
    "ws_url",
]

log = logging.getLogger(__name__)

Role = Literal["host", "client"]

#: ERROR codes after which reconnecting cannot help
FATAL_CODES = frozenset(
    {
        ErrorCode.INVALID_TOKEN,
        ErrorCode.SESSION_REPLACED,
        ErrorCode.WRONG_ROLE,
        ErrorCode.BAD_MESSAGE,
        ErrorCode.BAD_JSON,
        ErrorCode.ALREADY_BOUND,
    }
)


class SignalingFatal(Exception):
    """The gateway refused this connection for a reason a retry cannot fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def ws_url(gateway: str) -> str:
    """``http(s)://gw[/base]`` -> ``ws(s)://gw[/base]/ws``; ``ws(s)://…`` is kept as given."""
    parts = urlsplit(gateway.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"not a gateway URL: {gateway!r} (expected https://host or wss://host/ws)")
    path = parts.path.rstrip("/")
    if parts.scheme in ("http", "https") or not path:
        path = f"{path}/ws"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: attempt ``n`` waits a random time in
    ``[base·(1-jitter), base]`` where ``base = min(maximum, initial·factor**n)``."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        r = (rng or random).random()
        base = min(self.maximum, self.initial * self.factor ** min(max(attempt, 0), 64))
        return base * (1.0 - self.jitter * r)


class SignalingSession:
    """One WebSocket, bound (``BOUND`` received) as ``role``."""

    def __init__(self, ws: ClientConnection, bound: Bound) -> None:
        self.ws = ws
        self.bound = bound

    @classmethod
    async def open(
        cls, url: str, token: str, role: Role, *, timeout: float = 10.0
    ) -> SignalingSession:
        ws = await websockets.connect(
            url,
            open_timeout=timeout,
            max_size=MAX_FRAME_BYTES,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
        )
        try:
            await ws.send(dump(Bind(token=token, role=role)))
            first = await _recv(ws, timeout)
        except BaseException:
            await ws.close()
            raise
        if isinstance(first, ErrorMsg):
            await ws.close()
            raise SignalingFatal(str(first.code), first.message)
        if not isinstance(first, Bound):
            await ws.close()
            raise SignalingFatal("bad_message", f"expected BOUND, got {first.type}")  # type: ignore[attr-defined]
        return cls(ws, first)

    async def send(self, msg: SignalingMessage) -> None:
        await self.ws.send(dump(msg))

    async def recv(self, timeout: float | None = None) -> SignalingMessage:
        """The next message; ``TimeoutError`` after ``timeout``; ``ConnectionClosed`` at the end.
        A frame the parser refuses is logged and skipped (a newer gateway may say more)."""
        return await _recv(self.ws, timeout)

    async def close(self) -> None:
        await self.ws.close()


async def _recv(ws: ClientConnection, timeout: float | None) -> SignalingMessage:
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout)
        try:
            return parse_server(raw)
        except SignalingError as exc:
            log.warning("signaling: ignoring a frame the gateway sent (%s)", exc)


Handler = Callable[[SignalingSession, SignalingMessage], Awaitable[None]]


async def run_signaling(
    url: str,
    token: str,
    role: Role,
    handler: Handler,
    *,
    stop: asyncio.Event,
    backoff: Backoff | None = None,
    on_bound: Callable[[SignalingSession], Awaitable[None]] | None = None,
    rng: random.Random | None = None,
) -> None:
    """Keep a bound connection until ``stop`` is set: reconnect with backoff after every
    disconnect or failed attempt; return on a fatal refusal (raised as ``SignalingFatal``)."""
    backoff = backoff or Backoff()
    attempt = 0
    while not stop.is_set():
        try:
            session = await SignalingSession.open(url, token, role)
        except SignalingFatal as exc:
            if exc.code in FATAL_CODES:
                raise
            log.warning("signaling: gateway refused the connection (%s)", exc.code)
            session = None
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            log.warning("signaling: cannot reach %s (%s)", url, type(exc).__name__)
            session = None
        if session is None:
            delay = backoff.delay(attempt, rng)
            attempt += 1
            log.info("signaling: retrying in %.1f s", delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
            continue
        attempt = 0
        log.info("signaling: connected to %s as %s (%s)", url, session.bound.username, role)
        try:
            if on_bound is not None:
                await on_bound(session)
            while not stop.is_set():
                recv = asyncio.ensure_future(session.recv())
                stopping = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({recv, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    break
                stopping.cancel()
                msg = recv.result()
                if isinstance(msg, ErrorMsg) and msg.code in FATAL_CODES:
                    raise SignalingFatal(str(msg.code), msg.message)
                await handler(session, msg)
        except websockets.ConnectionClosed as exc:
            log.warning("signaling: disconnected (%s); reconnecting", exc.rcvd or "no close frame")
        finally:
            await session.close()
        if not stop.is_set():
            # a dropped socket reconnects quickly, but a flapping gateway still backs off
            delay = backoff.delay(attempt, rng)
            attempt += 1
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
