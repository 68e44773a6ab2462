"""The signaling WebSocket ``GET /ws``: a thin adapter between a socket and the ``Hub``.

``install(app, ctx)`` (called by the gateway's ``create_app``) builds the hub, its fanout (Redis
when ``WAVRY_REDIS_URL`` is set, otherwise in-process) and the master client, registers the
router, lifecycle hooks, the revocation hook and metrics.

Per socket: admission (origin, per-IP and total caps) before the upgrade, refused with an HTTP
status; then a reader (frame type, size, rate, parse, ``hub.handle``) and a writer (drains the
bounded outbox, sends the close) run side by side; a timer enforces the bind deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from wavry.gateway.signaling.fanout import Fanout, LocalFanout
from wavry.gateway.signaling.hub import COUNTERS, CloseFrame, Conn, Hub, account_subject
from wavry.gateway.signaling.limits import ConnectionCaps, Refusal, origin_refusal
from wavry.gateway.signaling.master_client import MasterClient
from wavry.gateway.signaling.messages import ErrorCode, SignalingError, parse_client
from wavry.gateway.signaling.settings import SignalingSettings

if TYPE_CHECKING:
    from wavry.gateway.app import GatewayContext

__all__ = ["SignalingService", "install", "router", "signaling_settings"]

log = logging.getLogger(__name__)

router = APIRouter()

#: how long the writer may take to flush a closing ERROR once the reader has stopped
_FLUSH_TIMEOUT = 5.0


def signaling_settings(ctx: GatewayContext) -> SignalingSettings:
    nested: SignalingSettings = ctx.settings.signaling
    return nested


@dataclass
class SignalingService:
    ctx: GatewayContext
    settings: SignalingSettings
    hub: Hub
    fanout: Fanout
    caps: ConnectionCaps
    master: MasterClient | None
    refused: int = 0

    async def start(self) -> None:
        await self.fanout.start(self.hub.deliver)

    async def stop(self) -> None:
        await self.hub.shutdown()
        # give writers a moment to send the closing ERROR
        for _ in range(20):
            if not self.hub.conns:
                break
            await asyncio.sleep(0.05)
        await self.fanout.aclose()
        if self.master is not None:
            await self.master.aclose()

    async def serve(self, websocket: WebSocket) -> None:
        ctx, s = self.ctx, self.settings
        ip = ctx.client_ip(websocket)
        refusal = origin_refusal(
            websocket.headers.get("origin"),
            ctx.settings.allowed_origins,
            missing_ok=s.missing_origin_ok,
        )
        if refusal is None:
            refusal = self.caps.acquire(ip)
        if refusal is not None:
            self.refused += 1
            await _deny(websocket, refusal)
            return
        conn: Conn | None = None
        timer: asyncio.TimerHandle | None = None
        try:
            await websocket.accept()
            conn = self.hub.open(ip)
            timer = asyncio.get_running_loop().call_later(
                s.bind_timeout_secs, self.hub.bind_deadline_passed, conn
            )
            await self._run(websocket, conn)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the peer went away during the upgrade or the close
        finally:
            if timer is not None:
                timer.cancel()
            if conn is not None:
                await self.hub.close(conn)
            self.caps.release(ip)

    async def _run(self, websocket: WebSocket, conn: Conn) -> None:
        reader = asyncio.create_task(self._read(websocket, conn))
        writer = asyncio.create_task(self._write(websocket, conn))
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer in done:
                reader.cancel()
            elif conn.closing:  # the reader stopped on a violation: let the ERROR out
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(writer), _FLUSH_TIMEOUT)
        finally:
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _read(self, websocket: WebSocket, conn: Conn) -> None:
        hub, limit = self.hub, self.settings.max_frame_bytes
        while not conn.closing:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                hub.kill(conn, ErrorCode.BINARY_FRAME, "only text frames are accepted")
                return
            if not conn.rate.allow(time.monotonic()):
                hub.kill(conn, ErrorCode.RATE_LIMITED, "too many messages on this connection")
                return
            if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
                hub.kill(conn, ErrorCode.TOO_LARGE, f"frames are limited to {limit} bytes")
                return
            try:
                msg = parse_client(text)
            except SignalingError as exc:
                hub.kill(conn, exc.code, exc.message)
                return
            try:
                await hub.handle(conn, msg)
            except Exception:  # noqa: BLE001 - top of the socket's task: log, close cleanly
                log.exception("signaling: handling a %s failed", type(msg).__name__)
                hub.kill(conn, ErrorCode.INTERNAL, "internal error")
                return

    async def _write(self, websocket: WebSocket, conn: Conn) -> None:
        while True:
            item = await conn.outbox.get()
            try:
                if isinstance(item, CloseFrame):
                    await websocket.close(item.code, item.reason)
                    return
                await websocket.send_text(item)
            except (WebSocketDisconnect, OSError, RuntimeError):
                return


async def _deny(websocket: WebSocket, refusal: Refusal) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            JSONResponse({"error": refusal.reason}, status_code=refusal.status)
        )
    else:  # the server cannot send a body: a close before accept answers 403
        await websocket.close(code=1008, reason=refusal.reason[:120])


@router.websocket("/ws")
async def signaling_socket(websocket: WebSocket) -> None:
    service: SignalingService = websocket.app.state.signaling
    await service.serve(websocket)


def _make_fanout(ctx: GatewayContext, s: SignalingSettings) -> Fanout:
    if ctx.settings.redis_url is None:
        return LocalFanout()
    from wavry.gateway.signaling.redis_backend import RedisFanout

    return RedisFanout.from_url(
        ctx.settings.redis_url.get_secret_value(),
        prefix=s.redis_prefix,
        binding_ttl=s.binding_ttl_secs,
    )


def _make_master(ctx: GatewayContext, s: SignalingSettings) -> MasterClient | None:
    url = ctx.settings.master_url
    if url is None or s.master_token is None:
        return None
    return MasterClient(url, s.master_token.get_secret_value(), timeout=s.master_timeout_secs)


def install(app: FastAPI, ctx: GatewayContext) -> None:
    """Wire signaling into the gateway app (``create_app`` calls this)."""
    from wavry.storage.models import User

    s = signaling_settings(ctx)

    async def subject_of(username: str) -> str | None:
        async with ctx.db() as db:
            row = (
                await db.execute(select(User.id, User.wavry_id).where(User.username == username))
            ).one_or_none()
        if row is None:
            return None
        return row.wavry_id or account_subject(row.id)

    async def audit(**kw: Any) -> None:
        await ctx.auditor.record(**kw)

    for name, help_text in COUNTERS.items():
        ctx.metrics.add_counter(name, help_text)
    fanout = _make_fanout(ctx, s)
    master = _make_master(ctx, s)
    hub = Hub(
        settings=s,
        directory=ctx,
        fanout=fanout,
        limiter=ctx.limiter,
        clock=ctx.clock,
        monotonic=time.monotonic,
        subject_of=subject_of,
        master=master,
        audit=audit,
        on_count=ctx.metrics.inc,
    )
    service = SignalingService(
        ctx=ctx,
        settings=s,
        hub=hub,
        fanout=fanout,
        caps=ConnectionCaps(max_total=s.max_connections, max_per_ip=s.max_per_ip),
        master=master,
    )
    app.state.signaling = service
    ctx.startup_hooks.append(service.start)
    ctx.shutdown_hooks.append(service.stop)
    ctx.revocation_hooks.append(hub.sessions_revoked)
    ctx.metrics.add_gauge(
        "websocket_connections", "Open signaling WebSockets", lambda: service.caps.total
    )
    ctx.metrics.add_gauge(
        "signaling_hosts_bound", "Host connections bound here", lambda: hub.bound_count("host")
    )
    ctx.metrics.add_gauge(
        "signaling_clients_bound",
        "Client connections bound here",
        lambda: hub.bound_count("client"),
    )
    app.include_router(router)
