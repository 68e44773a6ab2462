"""Register, login, logout, sessions over the ASGI app (real database, real Argon2id)."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import PASSWORD, bearer, register, register_body


async def test_register_login_logout_round_trip(client: httpx.AsyncClient) -> None:
    reg = await register(client)
    assert len(reg["token"]) == 64
    assert reg["user"]["email"] == "user1@example.com"
    assert reg["totp_required"] is False

    resp = await client.post(
        "/auth/login", json={"email": " USER1@Example.com ", "password": PASSWORD}
    )
    assert resp.status_code == 200, resp.text
    token = resp.json()["token"]
    assert token != reg["token"]

    me = await client.get("/auth/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["user"]["username"] == "user1"

    out = await client.post("/auth/logout", headers=bearer(token))
    assert out.json() == {"revoked": True}
    assert (await client.get("/auth/me", headers=bearer(token))).status_code == 401
    again = await client.post("/auth/logout", headers={"X-Session-Token": token})
    assert again.json() == {"revoked": False}


async def test_register_conflict_is_generic(client: httpx.AsyncClient) -> None:
    await register(client)
    by_email = await client.post("/auth/register", json=register_body(2, email="user1@example.com"))
    by_name = await client.post("/auth/register", json=register_body(3, username="user1"))
    assert by_email.status_code == by_name.status_code == 409
    assert by_email.json() == by_name.json()
