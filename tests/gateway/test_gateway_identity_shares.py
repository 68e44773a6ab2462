"""Wavry ID binding by Ed25519 challenge; host shares and ``may_connect``; ``client_ip``."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from tests.gateway.conftest import AppFactory, Clock, bearer, register
from wavry.gateway.api_identity import bind_message
from wavry.rift.identity import Identity


async def _challenge(client: httpx.AsyncClient, token: str, wavry_id: str) -> str:
    resp = await client.post("/auth/challenge", json={"wavry_id": wavry_id}, headers=bearer(token))
    assert resp.status_code == 200, resp.text
    return str(resp.json()["challenge"])


async def test_bind_wavry_id(client: httpx.AsyncClient, clock: Clock) -> None:
    reg = await register(client)
    token, user_id = reg["token"], reg["user_id"]
    ident = Identity.generate()
    challenge = await _challenge(client, token, ident.wavry_id)
    sig = ident.sign(bind_message(user_id, bytes.fromhex(challenge)))
    resp = await client.post(
        "/auth/challenge/verify",
        json={"challenge": challenge, "signature_hex": sig.hex()},
        headers=bearer(token),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"user_id": user_id, "wavry_id": ident.wavry_id}
    me = (await client.get("/auth/me", headers=bearer(token))).json()
    assert me["user"]["wavry_id"] == ident.wavry_id
    # single use
    resp = await client.post(
        "/auth/challenge/verify",
        json={"challenge": challenge, "signature_hex": sig.hex()},
        headers=bearer(token),
    )
    assert resp.status_code == 401

    # another account cannot take the same Wavry ID
    other = await register(client, 2)
    challenge = await _challenge(client, other["token"], ident.wavry_id)
    sig = ident.sign(bind_message(other["user_id"], bytes.fromhex(challenge)))
    resp = await client.post(
        "/auth/challenge/verify",
        json={"challenge": challenge, "signature_hex": sig.hex()},
        headers=bearer(other["token"]),
    )
    assert resp.status_code == 409


async def test_bind_refusals(client: httpx.AsyncClient, clock: Clock) -> None:
    reg = await register(client)
    token, user_id = reg["token"], reg["user_id"]
    ident, impostor = Identity.generate(), Identity.generate()
    # signed by another key
    challenge = await _challenge(client, token, ident.wavry_id)
    sig = impostor.sign(bind_message(user_id, bytes.fromhex(challenge)))
    body = {"challenge": challenge, "signature_hex": sig.hex()}
    resp = await client.post("/auth/challenge/verify", json=body, headers=bearer(token))
    assert resp.status_code == 401 and resp.json()["error"] == "signature does not verify"
    # signed for another account (message binds the user id)
    challenge = await _challenge(client, token, ident.wavry_id)
    sig = ident.sign(bind_message("someone-else", bytes.fromhex(challenge)))
    body = {"challenge": challenge, "signature_hex": sig.hex()}
    assert (
        await client.post("/auth/challenge/verify", json=body, headers=bearer(token))
    ).status_code == 401
    # expired
    challenge = await _challenge(client, token, ident.wavry_id)
    sig = ident.sign(bind_message(user_id, bytes.fromhex(challenge)))
    clock.advance(301)
    body = {"challenge": challenge, "signature_hex": sig.hex()}
    resp = await client.post("/auth/challenge/verify", json=body, headers=bearer(token))
    assert resp.status_code == 401 and "expired" in resp.json()["error"]
    # bad Wavry ID, no session
    resp = await client.post("/auth/challenge", json={"wavry_id": "!" * 43}, headers=bearer(token))
    assert resp.status_code == 400
    assert (
        await client.post("/auth/challenge", json={"wavry_id": ident.wavry_id})
    ).status_code == 401
    # bounded per account
    codes = [
        (
            await client.post(
                "/auth/challenge", json={"wavry_id": ident.wavry_id}, headers=bearer(token)
            )
        ).status_code
        for _ in range(6)
    ]
    assert codes == [200] * 5 + [429]


async def test_shares_and_may_connect(client: httpx.AsyncClient, app: FastAPI) -> None:
    ctx = app.state.gateway
    owner = await register(client, 1)
    friend = await register(client, 2)
    stranger = await register(client, 3)
    p_friend = await ctx.resolve_token(friend["token"])
    p_owner = await ctx.resolve_token(owner["token"])
    p_stranger = await ctx.resolve_token(stranger["token"])
    assert p_owner.username == "user1" and p_owner.user_id == owner["user_id"]

    assert await ctx.may_connect(p_owner, "user1") == (True, "ok")
    assert await ctx.may_connect(p_friend, "USER1") == (False, "not_shared")
    assert await ctx.may_connect(p_friend, "ghost") == (False, "unknown_target")

    resp = await client.post(
        "/v1/shares", json={"username": "User2"}, headers=bearer(owner["token"])
    )
    assert resp.status_code == 200 and resp.json()["created"] is True
    again = await client.post(
        "/v1/shares", json={"username": "user2"}, headers=bearer(owner["token"])
    )
    assert again.json()["created"] is False
    assert await ctx.may_connect(p_friend, "user1") == (True, "ok")
    assert await ctx.may_connect(p_owner, "user2") == (False, "not_shared")  # not symmetric
    assert await ctx.may_connect(p_stranger, "user1") == (False, "not_shared")

    mine = (await client.get("/v1/shares", headers=bearer(owner["token"]))).json()
    assert [s["username"] for s in mine["shared_with"]] == ["user2"] and mine["shared_by"] == []
    theirs = (await client.get("/v1/shares", headers=bearer(friend["token"]))).json()
    assert [s["username"] for s in theirs["shared_by"]] == ["user1"]

    resp = await client.post(
        "/v1/shares", json={"username": "ghost"}, headers=bearer(owner["token"])
    )
    assert resp.status_code == 404
    resp = await client.post(
        "/v1/shares", json={"username": "user1"}, headers=bearer(owner["token"])
    )
    assert resp.status_code == 400
    assert (await client.get("/v1/shares")).status_code == 401

    resp = await client.delete("/v1/shares/user2", headers=bearer(owner["token"]))
    assert resp.json() == {"removed": True}
    assert await ctx.may_connect(p_friend, "user1") == (False, "not_shared")
    resp = await client.delete("/v1/shares/user2", headers=bearer(owner["token"]))
    assert resp.json() == {"removed": False}
    resp = await client.delete("/v1/shares/BAD NAME", headers=bearer(owner["token"]))
    assert resp.status_code == 400


def _request(ip: str, headers: dict[str, str]) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "client": (ip, 1),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
    )


@pytest.mark.parametrize(
    ("trust", "hops", "headers", "expected"),
    [
        (False, 1, {"X-Forwarded-For": "1.2.3.4"}, "10.0.0.1"),
        (True, 1, {"X-Forwarded-For": "6.6.6.6, 1.2.3.4"}, "1.2.3.4"),  # rightmost = proxy's view
        (True, 2, {"X-Forwarded-For": "6.6.6.6, 1.2.3.4, 10.0.0.9"}, "1.2.3.4"),
        (True, 1, {"X-Real-IP": "2001:db8::1"}, "2001:db8::1"),
        (True, 1, {"X-Forwarded-For": "not-an-ip"}, "10.0.0.1"),
        (True, 3, {"X-Forwarded-For": "1.2.3.4"}, "10.0.0.1"),
    ],
)
def test_client_ip(
    make_app: AppFactory, trust: bool, hops: int, headers: dict[str, str], expected: str
) -> None:
    ctx = make_app(trust_proxy_headers=trust, trusted_proxy_hops=hops).state.gateway
    assert ctx.client_ip(_request("10.0.0.1", headers)) == expected
