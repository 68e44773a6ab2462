"""The account flows on both databases: a fresh SQLite file and a fresh PostgreSQL database (a
private server started by tests/services.py). Locks, conditional updates, cascades and
``LIKE ... ESCAPE`` behave differently enough between the two to be worth running twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.gateway.conftest import (
    ADMIN_AUTH,
    PASSWORD,
    Clock,
    asgi_client,
    bearer,
    register,
    register_body,
)
from tests.gateway.conftest import settings_for as gateway_settings
from wavry.gateway import create_app, totp
from wavry.gateway.app import sweep_once
from wavry.storage import downgrade, make_engine, upgrade
from wavry.storage.models import LoginFailure, User, UserSession

CREDS = {"email": "user1@example.com", "password": PASSWORD}


@pytest.fixture
async def db_app(any_database_url: str, tmp_path: Path, clock: Clock) -> AsyncIterator[FastAPI]:
    engine = make_engine(any_database_url)
    await upgrade(engine)
    try:
        yield create_app(
            gateway_settings(tmp_path), engine=engine, clock=clock, run_background=False
        )
    finally:
        await engine.dispose()


async def test_account_flows(db_app: FastAPI, clock: Clock) -> None:
    ctx = db_app.state.gateway
    async with asgi_client(db_app) as c:
        owner = await register(c, 1)
        friend = await register(c, 2)
        taken = {**register_body(3), "email": CREDS["email"]}
        assert (await c.post("/auth/register", json=taken)).status_code == 409

        # lockout with backoff, then success clears it
        wrong = {**CREDS, "password": "wrong password"}
        for _ in range(5):
            assert (await c.post("/auth/login", json=wrong)).status_code == 401
        assert (await c.post("/auth/login", json=CREDS)).status_code == 429
        clock.advance(61)
        assert (await c.post("/auth/login", json=CREDS)).status_code == 200

        # TOTP: enable, login, replay refused
        token = owner["token"]
        auth = bearer(token)
        setup = await c.post("/auth/2fa/setup", json={"password": PASSWORD}, headers=auth)
        secret = totp.b32decode(setup.json()["secret"])
        code = totp.totp(secret, clock.now)
        enabled = await c.post("/auth/2fa/enable", json={"code": code}, headers=auth)
        assert enabled.status_code == 200
        clock.advance(30)
        code = totp.totp(secret, clock.now)
        assert (await c.post("/auth/login", json={**CREDS, "totp_code": code})).status_code == 200
        assert (await c.post("/auth/login", json={**CREDS, "totp_code": code})).status_code == 401

        # shares and may_connect
        p_friend = await ctx.resolve_token(friend["token"])
        assert await ctx.may_connect(p_friend, "user1") == (False, "not_shared")
        await c.post("/v1/shares", json={"username": "user2"}, headers=bearer(token))
        assert await ctx.may_connect(p_friend, "user1") == (True, "ok")

        # admin search with literal wildcards, ban revokes sessions
        found = (await c.get("/admin/api/users?query=user_", headers=ADMIN_AUTH)).json()["users"]
        assert found == []
        resp = await c.post(
            "/admin/api/ban", json={"user_id": friend["user_id"], "reason": "x"}, headers=ADMIN_AUTH
        )
        assert resp.status_code == 200
        assert await ctx.resolve_token(friend["token"]) is None
        ov = (await c.get("/admin/api/overview", headers=ADMIN_AUTH)).json()
        assert ov["active_bans"][0]["user_id"] == friend["user_id"]

        # sessions listing and revocation
        listing = (await c.get("/auth/sessions", headers=bearer(token))).json()["sessions"]
        assert len(listing) >= 2
        other = next(s for s in listing if not s["current"])
        resp = await c.post(
            "/auth/sessions/revoke", json={"session_id": other["id"]}, headers=bearer(token)
        )
        assert resp.json() == {"revoked": True}

    clock.advance(2 * 86_400)
    await sweep_once(ctx)
    async with ctx.db() as db:
        assert await db.scalar(select(func.count()).select_from(UserSession)) == 0
        assert await db.scalar(select(func.count()).select_from(LoginFailure)) == 0
        # deleting a user cascades to its sessions, shares and bans
        user = await db.get(User, friend["user_id"])
        await db.delete(user)
        await db.commit()


async def test_migrations_round_trip(any_database_url: str) -> None:
    engine = make_engine(any_database_url)
    try:
        await upgrade(engine)
        await downgrade(engine, "0001_master_initial")
        await upgrade(engine)
        async with engine.connect() as conn:
            version = (await conn.exec_driver_sql("select version_num from alembic_version")).one()
        assert version[0] == "0002_gateway_accounts" or version[0] > "0002"
    finally:
        await engine.dispose()
