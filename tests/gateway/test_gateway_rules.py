"""Negative tests for every account rule: lockout with backoff (per account, per address, for
unknown emails too), rate limits, expired/revoked tokens, bans, body limits, malformed input."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.gateway.conftest import (
    ADMIN_AUTH,
    PASSWORD,
    AppFactory,
    Clock,
    asgi_client,
    bearer,
    register,
    register_body,
)

CREDS = {"email": "user1@example.com", "password": PASSWORD}
WRONG = {"email": "user1@example.com", "password": "not the password"}


async def test_lockout_with_backoff_per_account(app: FastAPI, clock: Clock) -> None:
    async with asgi_client(app, "198.51.100.1") as c:
        await register(c)
    for i in range(5):  # each attempt from its own address: only the account key counts
        async with asgi_client(app, f"198.51.100.{10 + i}") as c:
            resp = await c.post("/auth/login", json=WRONG)
            assert resp.status_code == 401 and resp.json() == {"error": "invalid email or password"}
    async with asgi_client(app, "198.51.100.99") as c:
        resp = await c.post("/auth/login", json=CREDS)  # right password, but locked
        assert resp.status_code == 429
        assert resp.headers["retry-after"] == "60"
        clock.advance(61)
        assert (await c.post("/auth/login", json=WRONG)).status_code == 401  # 6th: 120 s
        resp = await c.post("/auth/login", json=CREDS)
        assert resp.status_code == 429 and resp.headers["retry-after"] == "120"
        clock.advance(121)
        assert (await c.post("/auth/login", json=CREDS)).status_code == 200
        # success cleared the record: one failure does not lock
        assert (await c.post("/auth/login", json=WRONG)).status_code == 401
        assert (await c.post("/auth/login", json=CREDS)).status_code == 200


async def test_unknown_email_locks_like_a_known_one(app: FastAPI) -> None:
    ghost = {"email": "nobody@example.com", "password": "whatever password"}
    statuses = []
    for i in range(6):
        async with asgi_client(app, f"198.51.100.{20 + i}") as c:
            resp = await c.post("/auth/login", json=ghost)
            statuses.append((resp.status_code, resp.json()["error"]))
    assert statuses[:5] == [(401, "invalid email or password")] * 5
    assert statuses[5][0] == 429


async def test_lockout_per_address(app: FastAPI) -> None:
    async with asgi_client(app, "198.51.100.1") as c:
        await register(c)
    async with asgi_client(app, "192.0.2.66") as attacker:
        for i in range(5):
            body = {"email": f"victim{i}@example.com", "password": "guess guess guess"}
            assert (await attacker.post("/auth/login", json=body)).status_code == 401
        assert (await attacker.post("/auth/login", json=CREDS)).status_code == 429
    async with asgi_client(app, "192.0.2.67") as other:
        assert (await other.post("/auth/login", json=CREDS)).status_code == 200


async def test_per_account_rate_limit(make_app: AppFactory) -> None:
    app = make_app(account_rate_limit=3, lockout_threshold=100)
    async with asgi_client(app, "198.51.100.1") as c:
        await register(c)
    codes = []
    for i in range(4):
        async with asgi_client(app, f"198.51.100.{30 + i}") as c:
            codes.append((await c.post("/auth/login", json=WRONG)).status_code)
    assert codes == [401, 401, 401, 429]


async def test_per_ip_rate_limit_on_register(make_app: AppFactory) -> None:
    app = make_app(auth_rate_limit=2)
    async with asgi_client(app) as c:
        await register(c, 1)
        await register(c, 2)
        resp = await c.post("/auth/register", json=register_body(3))
        assert resp.status_code == 429 and "retry-after" in resp.headers


async def test_global_rate_limit_spares_probes(make_app: AppFactory) -> None:
    app = make_app(global_rate_limit=3)
    async with asgi_client(app) as c:
        codes = [(await c.get("/auth/me")).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        for _ in range(5):
            assert (await c.get("/health")).status_code == 200
            assert (await c.get("/metrics")).status_code == 200


async def test_expired_token(client: httpx.AsyncClient, clock: Clock) -> None:
    token = (await register(client))["token"]
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 200
    clock.advance(86_400 + 1)
    resp = await client.get("/auth/me", headers=bearer(token))
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer short"},
        {"Authorization": "Bearer " + "x" * 64},
        {"Authorization": "Basic " + "a" * 64},
        {"X-Session-Token": "bad token with spaces and more than thirty-two chars"},
    ],
)
async def test_bad_tokens(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    assert (await client.get("/auth/me", headers=headers)).status_code == 401
    assert (await client.get("/auth/sessions", headers=headers)).status_code == 401


async def test_logout_needs_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/auth/logout")).status_code == 400
    resp = await client.post("/auth/logout", headers={"X-Session-Token": "x"})
    assert resp.status_code == 400


async def test_sessions_list_and_revoke(client: httpx.AsyncClient) -> None:
    first = (await register(client))["token"]
    second = (await client.post("/auth/login", json=CREDS)).json()["token"]
    listing = (await client.get("/auth/sessions", headers=bearer(second))).json()["sessions"]
    assert len(listing) == 2
    current = [s for s in listing if s["current"]]
    other = [s for s in listing if not s["current"]]
    assert len(current) == len(other) == 1
    resp = await client.post(
        "/auth/sessions/revoke", json={"session_id": other[0]["id"]}, headers=bearer(second)
    )
    assert resp.json() == {"revoked": True}
    assert (await client.get("/auth/me", headers=bearer(first))).status_code == 401
    assert (await client.get("/auth/me", headers=bearer(second))).status_code == 200
    # another account cannot revoke my sessions
    stranger = (await register(client, 2))["token"]
    resp = await client.post(
        "/auth/sessions/revoke", json={"session_id": current[0]["id"]}, headers=bearer(stranger)
    )
    assert resp.json() == {"revoked": False}
    assert (await client.get("/auth/me", headers=bearer(second))).status_code == 200


async def test_session_cap_revokes_the_oldest(make_app: AppFactory, clock: Clock) -> None:
    app = make_app(max_sessions_per_user=2)
    async with asgi_client(app) as c:
        first = (await register(c))["token"]
        clock.advance(1)
        second = (await c.post("/auth/login", json=CREDS)).json()["token"]
        clock.advance(1)
        third = (await c.post("/auth/login", json=CREDS)).json()["token"]
        assert (await c.get("/auth/me", headers=bearer(first))).status_code == 401
        assert (await c.get("/auth/me", headers=bearer(second))).status_code == 200
        assert (await c.get("/auth/me", headers=bearer(third))).status_code == 200


async def test_ban_revokes_sessions_and_refuses_logins(
    client: httpx.AsyncClient, clock: Clock, app: FastAPI
) -> None:
    reg = await register(client)
    token, user_id = reg["token"], reg["user_id"]
    seen: list[tuple[str, int]] = []

    async def hook(uid: str, hashes: list[str]) -> None:
        seen.append((uid, len(hashes)))

    app.state.gateway.revocation_hooks.append(hook)
    resp = await client.post(
        "/admin/api/ban",
        json={"user_id": user_id, "reason": "abuse", "duration_hours": 1},
        headers=ADMIN_AUTH,
    )
    assert resp.json() == {"success": True}
    assert seen == [(user_id, 1)]
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 401
    assert await app.state.gateway.resolve_token(token) is None
    resp = await client.post("/auth/login", json=CREDS)
    assert resp.status_code == 403 and resp.json()["error"] == "account suspended: abuse"
    # the ban is only revealed to someone who knows the password
    assert (await client.post("/auth/login", json=WRONG)).status_code == 401
    clock.advance(3601)
    assert (await client.post("/auth/login", json=CREDS)).status_code == 200


async def test_oversized_and_malformed_bodies(client: httpx.AsyncClient) -> None:
    big = register_body(1, display_name="x" * 20_000)
    resp = await client.post("/auth/register", json=big)
    assert resp.status_code == 413 and "error" in resp.json()

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 1024

    resp = await client.post("/auth/login", content=chunks())  # no Content-Length
    assert resp.status_code == 413

    resp = await client.post(
        "/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid request"
    resp = await client.post("/auth/login", json={**CREDS, "admin": True})  # extra field
    assert resp.status_code == 400
    resp = await client.post("/auth/login", json=["not", "an", "object"])
    assert resp.status_code == 400


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "short pw"),
        ("password", "x" * 129),
        ("email", "no-at-sign.example.com"),
        ("email", "two@@example.com"),
        ("email", "user@localhost"),
        ("email", "user@.example.com"),
        ("email", "us er@example.com"),
        ("username", "ab"),
        ("username", "has space"),
        ("username", "UPPER!"),
        ("display_name", "   "),
        ("display_name", "evil\u202ename"),
        ("display_name", "bell\x07"),
        ("public_key", "ab" * 31),
        ("public_key", "zz" * 32),
        ("public_key", "a" * 65),
    ],
)
async def test_register_validation(client: httpx.AsyncClient, field: str, value: str) -> None:
    resp = await client.post("/auth/register", json=register_body(1, **{field: value}))
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid request"
    assert any(field in d["loc"] for d in body["detail"])


async def test_refusal_floods_are_audited_sparingly(make_app: AppFactory) -> None:
    app = make_app(auth_rate_limit=1)
    async with asgi_client(app) as c:
        for _ in range(30):
            await c.get("/auth/me", headers=bearer("x" * 64))
        for _ in range(5):
            await c.post("/auth/register", json=register_body(9))
        events = (await c.get("/admin/api/audit?limit=1000", headers=ADMIN_AUTH)).json()["events"]
    refused_tokens = [e for e in events if e["action"] == "me"]
    limited = [e for e in events if e["outcome"] == "rate_limited"]
    assert len(refused_tokens) == 10 and len(limited) == 1
