"""Identity registration and login by Ed25519 challenge: TTL, single use, bounded table."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.master.conftest import AppFactory, Clock, identity, login, register_identity
from wavry.master.identity import challenge_message
from wavry.storage import AuditEvent, AuthChallenge, make_sessionmaker


async def _count(engine: AsyncEngine, model: type) -> int:
    async with make_sessionmaker(engine)() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def _challenge(client: httpx.AsyncClient, wavry_id: str, path: str = "register") -> str:
    resp = await client.post(f"/v1/auth/{path}", json={"wavry_id": wavry_id, "display_name": "n"}
                             if path == "register" else {"wavry_id": wavry_id})  # fmt: skip
    assert resp.status_code == 200, resp.text
    return str(resp.json()["challenge"])


def _verify(ident, challenge: str, purpose: str = "register") -> dict:  # type: ignore[no-untyped-def]
    sig = ident.sign(challenge_message(purpose, bytes.fromhex(challenge)))
    return {"wavry_id": ident.wavry_id, "challenge": challenge, "signature_hex": sig.hex()}


async def test_register_then_login(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    alice = identity(1)
    await register_identity(client, alice, "Alice")
    auth = await login(client, alice)
    assert auth["Authorization"].startswith("Bearer ")
    assert await _count(engine, AuthChallenge) == 0
    # registering twice is a conflict
    resp = await client.post("/v1/auth/register", json={"wavry_id": alice.wavry_id})
    assert resp.status_code == 409


async def test_challenge_is_single_use(client: httpx.AsyncClient) -> None:
    alice = identity(1)
    challenge = await _challenge(client, alice.wavry_id)
    body = _verify(alice, challenge)
    assert (await client.post("/v1/auth/register/verify", json=body)).status_code == 201
    assert (await client.post("/v1/auth/register/verify", json=body)).status_code == 401


async def test_failed_verify_burns_the_challenge(client: httpx.AsyncClient) -> None:
    alice, mallory = identity(1), identity(2)
    challenge = await _challenge(client, alice.wavry_id)
    forged = _verify(mallory, challenge)
    forged["wavry_id"] = alice.wavry_id
    resp = await client.post("/v1/auth/register/verify", json=forged)
    assert resp.status_code == 401
    good = _verify(alice, challenge)
    assert (await client.post("/v1/auth/register/verify", json=good)).status_code == 401


async def test_wrong_purpose_signature_refused(client: httpx.AsyncClient) -> None:
    alice = identity(1)
    challenge = await _challenge(client, alice.wavry_id)
    resp = await client.post("/v1/auth/register/verify", json=_verify(alice, challenge, "login"))
    assert resp.status_code == 401


async def test_challenge_expires(client: httpx.AsyncClient, clock: Clock) -> None:
    alice = identity(1)
    challenge = await _challenge(client, alice.wavry_id)
    clock.advance(300.0)
    resp = await client.post("/v1/auth/register/verify", json=_verify(alice, challenge))
    assert resp.status_code == 401 and "challenge" in resp.json()["error"]


async def test_challenge_table_is_bounded(make_app: AppFactory, engine: AsyncEngine,
                                          clock: Clock) -> None:  # fmt: skip
    app = make_app(challenge_table_max=3, challenges_per_identity=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
        a, b = identity(1), identity(2)
        await _challenge(client, a.wavry_id)
        await _challenge(client, a.wavry_id)
        resp = await client.post("/v1/auth/register", json={"wavry_id": a.wavry_id})
        assert resp.status_code == 429  # per identity
        await _challenge(client, b.wavry_id)
        resp = await client.post("/v1/auth/register", json={"wavry_id": b.wavry_id})
        assert resp.status_code == 429  # table full
        assert await _count(engine, AuthChallenge) == 3
        clock.advance(301.0)  # expired rows are purged to make room
        await _challenge(client, b.wavry_id)
        assert await _count(engine, AuthChallenge) == 1


async def test_identity_refusals(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    resp = await client.post("/v1/auth/register", json={"wavry_id": "not-a-wavry-id"})
    assert resp.status_code == 400
    resp = await client.post("/v1/auth/login", json={"wavry_id": identity(9).wavry_id})
    assert resp.status_code == 404
    resp = await client.post(
        "/v1/auth/login/verify",
        json={"wavry_id": identity(9).wavry_id, "challenge": "00" * 32, "signature_hex": "00" * 64},
    )
    assert resp.status_code == 401
    resp = await client.post("/v1/auth/register/verify", json={"wavry_id": "x"})
    assert resp.status_code == 400
    async with make_sessionmaker(engine)() as s:
        rows = (await s.scalars(select(AuditEvent))).all()
    assert ("login_verify", "auth_failed") in [(r.action, r.outcome) for r in rows]


async def test_auth_rate_limit_per_address(make_app: AppFactory, clock: Clock) -> None:
    app = make_app(auth_rate_limit_per_min=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
        for n in (1, 2):
            await _challenge(client, identity(n).wavry_id)
        resp = await client.post("/v1/auth/register", json={"wavry_id": identity(3).wavry_id})
        assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1
        clock.advance(60.0)
        await _challenge(client, identity(3).wavry_id)


async def test_banned_identity_cannot_log_in(client: httpx.AsyncClient) -> None:
    from tests.master.conftest import ADMIN_AUTH

    alice = identity(1)
    await register_identity(client, alice)
    auth = await login(client, alice)
    resp = await client.post(
        "/admin/api/sessions/revoke", json={"wavry_id": alice.wavry_id}, headers=ADMIN_AUTH
    )
    assert resp.status_code == 200 and resp.json() == {
        "wavry_id": alice.wavry_id,
        "banned": True,
        "was_registered": True,
    }
    assert (
        await client.post("/v1/auth/login", json={"wavry_id": alice.wavry_id})
    ).status_code == 403
    # the earlier token is revoked
    resp = await client.post(
        "/v1/sessions", json={"target_wavry_id": identity(2).wavry_id}, headers=auth
    )
    assert resp.status_code == 401
