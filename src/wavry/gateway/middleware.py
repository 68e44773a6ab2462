"""The gateway's edge: request body cap and the global per-address rate limit (pure ASGI)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from wavry.gateway.app import GatewayContext

__all__ = ["UNLIMITED_PATHS", "EdgeMiddleware"]

#: probes and scrapes: never rate limited
UNLIMITED_PATHS = frozenset({"/", "/health", "/ready", "/metrics"})


class _BodyTooLarge(HTTPException):
    """An HTTPException so FastAPI's body parsing passes it through as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


async def _send_error(send: Send, status: int, message: str, headers: list[Any]) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EdgeMiddleware:
    """Refuse bodies over ``settings.max_body_bytes`` (413, by Content-Length or while
    streaming) and more than ``global_rate_limit`` requests per window per client address
    (429)."""

    def __init__(self, app: ASGIApp, ctx: GatewayContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = self.ctx
        settings = ctx.settings
        limit = settings.max_body_bytes
        if scope.get("path", "") not in UNLIMITED_PATHS and scope.get("method") != "OPTIONS":
            ip = ctx.client_ip(HTTPConnection(scope))
            if not await ctx.hit(
                f"global:{ip}", settings.global_rate_limit, settings.global_rate_window_secs
            ):
                retry = str(int(settings.global_rate_window_secs))
                await _send_error(send, 429, "rate limited", [(b"retry-after", retry.encode())])
                return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > limit
                except ValueError:
                    await _send_error(send, 400, "invalid Content-Length", [])
                    return
                if too_large:
                    ctx.metrics.inc("body_too_large")
                    await _send_error(send, 413, f"request body over {limit} bytes", [])
                    return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    ctx.metrics.inc("body_too_large")
                    raise _BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await _send_error(send, 413, f"request body over {limit} bytes", [])
