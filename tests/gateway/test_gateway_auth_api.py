"""Register, login, logout, sessions over the ASGI app (real database, real Argon2id)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.gateway.conftest import PASSWORD, bearer, register, register_body
from wavry.gateway.passwords import Argon2Params, PasswordHasher


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


class _CountingHasher(PasswordHasher):
    """The real hasher, counting the Argon2 verifications it runs."""

    def __init__(self) -> None:
        super().__init__(Argon2Params(memory_kib=8, time_cost=1, parallelism=1))
        self.verifications = 0

    def verify_sync(self, phc: str, password: str) -> bool:
        self.verifications += 1
        return super().verify_sync(phc, password)


async def test_unknown_email_costs_one_argon2_verify(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await register(client)
    hasher = _CountingHasher()
    app.state.gateway.passwords = hasher
    unknown = await client.post(
        "/auth/login", json={"email": "ghost@example.com", "password": "some password"}
    )
    after_unknown = hasher.verifications
    known = await client.post(
        "/auth/login", json={"email": "user1@example.com", "password": "some password"}
    )
    assert unknown.status_code == known.status_code == 401
    assert unknown.json() == known.json() == {"error": "invalid email or password"}
    assert after_unknown == 1 and hasher.verifications == 2
