"""Admin API: token rules, overview, users, sessions, revoke, ban/unban, audit, relays via a real
master."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.gateway.conftest import (
    ADMIN_AUTH,
    ADMIN_TOKEN,
    PASSWORD,
    AppFactory,
    asgi_client,
    bearer,
    register,
)


async def test_admin_token_rules(make_app: AppFactory) -> None:
    async with asgi_client(make_app()) as c:
        assert (await c.get("/admin/api/overview")).status_code == 401
        wrong = {"Authorization": "Bearer " + "h" * 40}
        assert (await c.get("/admin/api/overview", headers=wrong)).status_code == 401
        assert (
            await c.get("/admin/api/overview", headers={"X-Admin-Token": ADMIN_TOKEN})
        ).status_code == 200
        assert (await c.get("/admin/api/overview", headers=ADMIN_AUTH)).status_code == 200
        audit = (await c.get("/admin/api/audit", headers=ADMIN_AUTH)).json()["events"]
        assert any(e["action"] == "admin_overview" and e["outcome"] == "auth_failed" for e in audit)
    async with asgi_client(make_app(admin_panel_token=None)) as c:
        resp = await c.get("/admin/api/overview", headers=ADMIN_AUTH)
        assert resp.status_code == 403 and "ADMIN_PANEL_TOKEN" in resp.json()["error"]


def test_short_admin_token_refused() -> None:
    from pydantic import ValidationError

    from wavry.gateway.settings import GatewaySettings

    with pytest.raises(ValidationError, match="at least 32"):
        GatewaySettings(admin_panel_token="x" * 31)


async def test_admin_rate_limit_before_token(make_app: AppFactory) -> None:
    async with asgi_client(make_app(admin_rate_limit=2)) as c:
        wrong = {"Authorization": "Bearer " + "h" * 40}
        codes = [(await c.get("/admin/api/overview", headers=wrong)).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        assert (await c.get("/admin/api/overview", headers=ADMIN_AUTH)).status_code == 429


async def test_overview_users_sessions_revoke(client: httpx.AsyncClient) -> None:
    a = await register(client, 1)
    b = await register(client, 2)
    ov = (await client.get("/admin/api/overview", headers=ADMIN_AUTH)).json()
    assert ov["users_total"] == 2 and ov["sessions_active"] == 2
    assert {u["username"] for u in ov["recent_users"]} == {"user1", "user2"}
    assert all(not u["banned"] and not u["has_totp"] for u in ov["recent_users"])
    assert ov["active_bans"] == []
    assert len(ov["recent_sessions"][0]["id"]) == 16

    found = (await client.get("/admin/api/users?query=USER2", headers=ADMIN_AUTH)).json()
    assert [u["id"] for u in found["users"]] == [b["user_id"]]
    none = (await client.get("/admin/api/users?query=%25_", headers=ADMIN_AUTH)).json()
    assert none["users"] == []  # LIKE wildcards are literal

    sessions = (
        await client.get(f"/admin/api/sessions?user_id={a['user_id']}", headers=ADMIN_AUTH)
    ).json()["sessions"]
    assert len(sessions) == 1 and sessions[0]["username"] == "user1"
    resp = await client.post(
        "/admin/api/sessions/revoke", json={"session_id": sessions[0]["id"]}, headers=ADMIN_AUTH
    )
    assert resp.json() == {"revoked": True}
    assert (await client.get("/auth/me", headers=bearer(a["token"]))).status_code == 401
    resp = await client.post(
        "/admin/api/sessions/revoke", json={"session_id": sessions[0]["id"]}, headers=ADMIN_AUTH
    )
    assert resp.json() == {"revoked": False}


async def test_ban_unban_and_audit(client: httpx.AsyncClient) -> None:
    user = await register(client)
    resp = await client.post(
        "/admin/api/ban", json={"user_id": "nope", "reason": "x"}, headers=ADMIN_AUTH
    )
    assert resp.status_code == 404
    resp = await client.post(
        "/admin/api/ban", json={"user_id": user["user_id"], "reason": "spam"}, headers=ADMIN_AUTH
    )
    assert resp.json() == {"success": True}
    ov = (await client.get("/admin/api/overview", headers=ADMIN_AUTH)).json()
    assert ov["active_bans"][0]["reason"] == "spam" and ov["active_bans"][0]["expires_at"] is None
    assert ov["recent_users"][0]["banned"] is True and ov["sessions_active"] == 0
    creds = {"email": "user1@example.com", "password": PASSWORD}
    assert (await client.post("/auth/login", json=creds)).status_code == 403
    resp = await client.post(
        "/admin/api/unban", json={"user_id": user["user_id"]}, headers=ADMIN_AUTH
    )
    assert resp.json() == {"success": True}
    assert (await client.post("/auth/login", json=creds)).status_code == 200

    events = (await client.get("/admin/api/audit?limit=50", headers=ADMIN_AUTH)).json()["events"]
    actions = {(e["action"], e["outcome"]) for e in events}
    assert {
        ("ban_user", "success"),
        ("ban_user", "not_found"),
        ("unban_user", "success"),
        ("login", "denied"),
        ("register", "ok"),
    } <= actions
    assert all(len(e["actor_ip_hash"]) == 64 for e in events)
    assert not any("203.0.113.7" in str(e) for e in events)  # addresses only as hashes


async def test_relays_without_master(client: httpx.AsyncClient) -> None:
    resp = await client.get("/admin/api/relays", headers=ADMIN_AUTH)
    assert resp.status_code == 503 and "WAVRY_GATEWAY_MASTER_URL" in resp.json()["error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_relays_as_the_master_sees_them(make_app: AppFactory, tmp_path: Path) -> None:
    """A real master on loopback with one registered relay; the gateway proxies its view."""
    from wavry.master import MasterSettings
    from wavry.master import create_app as create_master
    from wavry.storage import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'master.db'}"
    await upgrade(url)
    master_app: FastAPI = create_master(
        MasterSettings(data_dir=tmp_path / "m", database_url=url, signing_key="11" * 32),
        run_background=False,
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(master_app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as m:
            resp = await m.post(
                "/v1/relays/register",
                json={
                    "relay_id": "relay-9",
                    "endpoints": ["198.51.100.10:4000"],
                    "max_bitrate_kbps": 20000,
                },
            )
            assert resp.status_code == 200, resp.text
        app = make_app(master_url=f"http://127.0.0.1:{port}")
        async with asgi_client(app) as c:
            resp = await c.get("/admin/api/relays", headers=ADMIN_AUTH)
            assert resp.status_code == 200, resp.text
            assert [r["relay_id"] for r in resp.json()["relays"]] == ["relay-9"]
    finally:
        server.should_exit = True
        await task
    app = make_app(master_url=f"http://127.0.0.1:{port}")  # now nothing listens there
    async with asgi_client(app) as c:
        resp = await c.get("/admin/api/relays", headers=ADMIN_AUTH)
        assert resp.status_code == 502 and "unreachable" in resp.json()["error"]
