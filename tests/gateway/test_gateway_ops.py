"""Ops endpoints, OpenAPI, the migrations of the gateway tables, the sweeper, CORS."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.gateway.conftest import PASSWORD, Clock, bearer, register
from wavry.gateway.app import sweep_once
from wavry.storage import downgrade, make_engine, upgrade
from wavry.storage.models import LoginFailure, UserSession

GATEWAY_TABLES = {"users", "user_sessions", "login_failures", "user_bans", "host_shares",
                  "user_challenges"}  # fmt: skip


async def test_root_health_ready_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/")).json()["service"] == "Wavry Gateway Online"
    health = (await client.get("/health")).json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["totp_available"] is True and health["admin_enabled"] is True
    assert (await client.get("/ready")).json() == {"ready": True, "database": "ok"}
    await register(client)
    await client.post("/auth/login", json={"email": "user1@example.com", "password": "wrong!"})
    text = (await client.get("/metrics")).text
    assert "# TYPE wavry_gateway_register_success_total counter" in text
    assert "wavry_gateway_register_success_total 1" in text
    assert "wavry_gateway_login_failures_total 1" in text
    assert "wavry_gateway_sessions_active 1" in text


async def test_ready_is_503_without_database(tmp_path: Path, clock: Clock) -> None:
    from tests.gateway.conftest import asgi_client, settings_for
    from wavry.gateway import create_app

    # a database path that cannot be opened: it is a directory
    (tmp_path / "a-directory").mkdir()
    engine = make_engine("sqlite+aiosqlite:///" + str(tmp_path / "a-directory"))
    app = create_app(settings_for(tmp_path), engine=engine, clock=clock, run_background=False)
    async with asgi_client(app) as c:
        resp = await c.get("/ready")
        assert resp.status_code == 503 and resp.json()["ready"] is False
        assert (await c.get("/health")).json()["status"] == "degraded"
        assert (await c.get("/metrics")).status_code == 200
    await engine.dispose()


async def test_extra_gauges_from_other_parts(app: FastAPI, client: httpx.AsyncClient) -> None:
    async def ws_count() -> float:
        return 3

    app.state.gateway.metrics.add_gauge("websocket_connections", "Bound sockets", ws_count)
    assert "wavry_gateway_websocket_connections 3" in (await client.get("/metrics")).text


async def test_openapi_documents_400_not_422(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/auth/register", "/auth/login", "/auth/logout", "/auth/2fa/setup",
                 "/auth/challenge", "/v1/shares", "/admin/api/ban", "/health"):  # fmt: skip
        assert path in paths, path
    for item in paths.values():
        for operation in item.values():
            assert "422" not in operation.get("responses", {})
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_cors_allow_list(client: httpx.AsyncClient) -> None:
    ok = await client.options(
        "/auth/login",
        headers={"Origin": "http://localhost:1420", "Access-Control-Request-Method": "POST"},
    )
    assert ok.headers.get("access-control-allow-origin") == "http://localhost:1420"
    bad = await client.options(
        "/auth/login",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in bad.headers


async def test_sweeper_purges(app: FastAPI, client: httpx.AsyncClient, clock: Clock) -> None:
    ctx = app.state.gateway
    await register(client)
    await client.post("/auth/login", json={"email": "user1@example.com", "password": "bad pw"})
    clock.advance(86_400 * 2)
    await sweep_once(ctx)
    async with ctx.db() as db:
        assert await db.scalar(select(func.count()).select_from(UserSession)) == 0
        assert await db.scalar(select(func.count()).select_from(LoginFailure)) == 0
    assert ctx.sweeps == 1


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_gateway_migration_down_and_up(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await upgrade(engine)
        assert GATEWAY_TABLES <= await _tables(engine)
        await downgrade(engine, "0001_master_initial")
        tables = await _tables(engine)
        assert not GATEWAY_TABLES & tables and "relays" in tables
        await upgrade(engine)
        assert GATEWAY_TABLES <= await _tables(engine)
    finally:
        await engine.dispose()


async def test_logout_revocation_hook(app: FastAPI, client: httpx.AsyncClient) -> None:
    seen: list[tuple[str, list[str]]] = []

    async def hook(user_id: str, hashes: list[str]) -> None:
        seen.append((user_id, hashes))

    async def broken(user_id: str, hashes: list[str]) -> None:
        raise RuntimeError("listener bug")

    app.state.gateway.revocation_hooks.extend([broken, hook])
    reg = await register(client)
    principal = await app.state.gateway.resolve_token(reg["token"])
    assert (await client.post("/auth/logout", headers=bearer(reg["token"]))).json()["revoked"]
    assert seen == [(reg["user_id"], [principal.token_hash])]
    assert PASSWORD  # the fixture password is shared with the other modules
