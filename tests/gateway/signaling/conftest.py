"""Signaling fixtures: a real gateway (create_app + uvicorn on 127.0.0.1) and real WebSocket
clients (the ``websockets`` library). Accounts are registered over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection

from tests.gateway.conftest import CHEAP_ARGON2, PASSWORD, TOTP_KEY_B64
from wavry.gateway import GatewaySettings, create_app
from wavry.gateway.signaling.limits import SERVER_WS_MAX_SIZE
from wavry.gateway.signaling.settings import SignalingSettings

ORIGIN = "http://app.wavry.test"
ADMIN_TOKEN = "s" * 40


def gateway_settings(tmp_path: Path, signaling: dict[str, Any] | None = None, **kw: Any) -> Any:
    sig: dict[str, Any] = {
        "allow_missing_origin": True,
        "bind_rate_limit": 10_000,
        "account_bind_rate_limit": 10_000,
        **(signaling or {}),
    }
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "admin_panel_token": ADMIN_TOKEN,
        "totp_key_b64": TOTP_KEY_B64,
        "audit_ip_key": "test-audit-key",
        "allowed_origins": [ORIGIN],
        "auth_rate_limit": 100_000,
        "account_rate_limit": 100_000,
        "global_rate_limit": 1_000_000,
        "post_auth_rate_limit": 100_000,
        "signaling": SignalingSettings(**sig),
        **CHEAP_ARGON2,
    }
    base.update(kw)
    return GatewaySettings(**base)


@dataclass
class Gateway:
    app: FastAPI
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int
    http: httpx.AsyncClient
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def register(self, username: str) -> str:
        """Create an account over HTTP; return its session token."""
        resp = await self.http.post(
            "/auth/register",
            json={
                "email": f"{username}@example.com",
                "password": PASSWORD,
                "username": username,
                "display_name": username.title(),
                "public_key": "ab" * 32,
            },
        )
        assert resp.status_code == 201, resp.text
        doc: dict[str, Any] = resp.json()
        self.users[username] = doc
        token: str = doc["token"]
        return token

    async def share(self, owner_token: str, with_username: str) -> None:
        resp = await self.http.post(
            "/v1/shares",
            json={"username": with_username},
            headers={"Authorization": f"Bearer {owner_token}"},
        )
        assert resp.status_code == 200, resp.text

    async def connect(self, **kw: Any) -> Peer:
        ws = await websockets.connect(self.ws_url, open_timeout=5, **kw)
        return Peer(ws)

    async def bind(self, token: str, role: str = "client", **kw: Any) -> Peer:
        peer = await self.connect(**kw)
        await peer.send({"type": "BIND", "token": token, "role": role})
        bound = await peer.expect("BOUND")
        assert bound["role"] == role
        return peer


class Peer:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, doc: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(doc))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(raw, str)
        doc: dict[str, Any] = json.loads(raw)
        return doc

    async def expect(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        doc = await self.recv(timeout)
        assert doc["type"] == kind, doc
        return doc

    async def expect_error(self, code: str, timeout: float = 5.0) -> dict[str, Any]:
        doc = await self.expect("ERROR", timeout)
        assert doc["code"] == code, doc
        return doc

    async def expect_closed(self, code: int, timeout: float = 5.0) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                extra = await asyncio.wait_for(self.ws.recv(), timeout)
                raise AssertionError(f"expected a close, got {extra!r}")
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        assert self.ws.close_code == code, (self.ws.close_code, self.ws.close_reason)

    async def silent(self, seconds: float = 0.3) -> None:
        """Nothing arrives within ``seconds``."""
        with pytest.raises(TimeoutError):
            doc = await self.recv(seconds)
            raise AssertionError(f"unexpected {doc}")  # pragma: no cover

    async def close(self) -> None:
        await self.ws.close()


@contextlib.asynccontextmanager
async def run_gateway(app: FastAPI) -> AsyncIterator[Gateway]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_level="warning",
        ws_max_size=SERVER_WS_MAX_SIZE,
        ws_ping_interval=None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("uvicorn exited during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        yield Gateway(app=app, server=server, task=task, port=port, http=http)
    finally:
        await http.aclose()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


GatewayFactory = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def gateway_factory(tmp_path: Path, engine: AsyncEngine) -> GatewayFactory:
    default_engine = engine

    def factory(
        *, engine: AsyncEngine | None = None, signaling: dict[str, Any] | None = None, **kw: Any
    ) -> contextlib.AbstractAsyncContextManager[Gateway]:
        settings = gateway_settings(tmp_path, signaling, **kw)
        app = create_app(settings, engine=engine or default_engine, clock=time.time)
        return run_gateway(app)

    return factory


@pytest.fixture
async def gw(gateway_factory: GatewayFactory) -> AsyncIterator[Gateway]:
    async with gateway_factory() as gateway:
        yield gateway
