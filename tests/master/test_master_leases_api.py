"""Lease issuing: each peer gets its own lease with the role it presents; limits; feedback."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.master.conftest import (
    ADMIN_AUTH,
    SIGNING_SEED,
    AppFactory,
    Clock,
    heartbeat,
    identity,
    login,
    register_identity,
    register_relay,
)
from wavry.master.feedback import feedback_message
from wavry.relay.lease import LeaseRejected, LeaseVerifier, key_id_for, public_key_from_private
from wavry.storage import AuditEvent, Relay, make_sessionmaker

PUB = public_key_from_private(SIGNING_SEED)
KID = key_id_for(PUB)


async def _setup(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    await register_relay(client, "relay-1")
    for _ in range(3):
        await heartbeat(client, "relay-1")
    alice, bob = identity(1), identity(2)
    await register_identity(client, alice)
    await register_identity(client, bob)
    return await login(client, alice), await login(client, bob)


@pytest.mark.parametrize("requester_role", ["client", "server"])
async def test_each_peer_gets_its_own_role(
    client: httpx.AsyncClient, clock: Clock, requester_role: str
) -> None:
    alice_auth, bob_auth = await _setup(client)
    resp = await client.post(
        "/v1/sessions",
        json={"target_wavry_id": identity(2).wavry_id, "role": requester_role},
        headers=alice_auth,
    )
    assert resp.status_code == 201, resp.text
    mine = resp.json()
    target_role = "server" if requester_role == "client" else "client"
    assert mine["role"] == requester_role and mine["wavry_id"] == identity(1).wavry_id
    assert mine["relay_id"] == "relay-1" and mine["relay_addr"] == "198.51.100.10:4000"
    assert mine["key_id"] == KID

    resp = await client.post(f"/v1/sessions/{mine['session_id']}/lease", headers=bob_auth)
    assert resp.status_code == 200, resp.text
    theirs = resp.json()
    assert theirs["role"] == target_role and theirs["wavry_id"] == identity(2).wavry_id

    verifier = LeaseVerifier({KID: PUB})
    for lease, who, role in (
        (mine, identity(1), requester_role),
        (theirs, identity(2), target_role),
    ):
        claims = verifier.verify(
            lease["token"],
            now=clock(),
            relay_id="relay-1",
            session_id=uuid.UUID(lease["session_id"]).bytes,
            role=role,
        )
        assert claims.sub == who.wavry_id and claims.role == role
        assert claims.exp - claims.iat == 900
        assert (claims.slimit, claims.hlimit) == (50_000, 100_000)
        # the same token presented in the other role is refused by the relay's check
        with pytest.raises(LeaseRejected):
            verifier.verify(
                lease["token"],
                now=clock(),
                relay_id="relay-1",
                session_id=uuid.UUID(lease["session_id"]).bytes,
                role="server" if role == "client" else "client",
            )


async def test_lease_refusals(client: httpx.AsyncClient) -> None:
    alice_auth, _ = await _setup(client)
    target = identity(2).wavry_id
    assert (await client.post("/v1/sessions", json={"target_wavry_id": target})).status_code == 401
    resp = await client.post(
        "/v1/sessions",
        json={"target_wavry_id": target},
        headers={"Authorization": "Bearer forged"},
    )
    assert resp.status_code == 401
    resp = await client.post(
        "/v1/sessions", json={"target_wavry_id": identity(5).wavry_id}, headers=alice_auth
    )
    assert resp.status_code == 404
    resp = await client.post(
        "/v1/sessions", json={"target_wavry_id": identity(1).wavry_id}, headers=alice_auth
    )
    assert resp.status_code == 400
    resp = await client.post(
        "/v1/sessions", json={"target_wavry_id": target, "role": "peer"}, headers=alice_auth
    )
    assert resp.status_code == 400
    # a third identity may not claim the session's leases
    carol = identity(3)
    await register_identity(client, carol)
    carol_auth = await login(client, carol)
    sid = (
        await client.post("/v1/sessions", json={"target_wavry_id": target}, headers=alice_auth)
    ).json()["session_id"]
    assert (await client.post(f"/v1/sessions/{sid}/lease", headers=carol_auth)).status_code == 403
    resp = await client.post(
        "/v1/sessions/00000000-0000-4000-8000-000000000000/lease", headers=carol_auth
    )
    assert resp.status_code == 404
    # a banned target gets no session
    await client.post(
        "/admin/api/sessions/revoke", json={"wavry_id": carol.wavry_id}, headers=ADMIN_AUTH
    )
    resp = await client.post(
        "/v1/sessions", json={"target_wavry_id": carol.wavry_id}, headers=alice_auth
    )
    assert resp.status_code == 403


async def test_no_relay_is_503(client: httpx.AsyncClient, clock: Clock) -> None:
    alice_auth, _ = await _setup(client)
    clock.advance(121.0)  # the only relay went silent: not assignable
    resp = await client.post(
        "/v1/sessions", json={"target_wavry_id": identity(2).wavry_id}, headers=alice_auth
    )
    assert resp.status_code == 503


async def test_relay_that_missed_three_heartbeats_gets_no_new_leases(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    alice_auth, _ = await _setup(client)
    body = {"target_wavry_id": identity(2).wavry_id}
    clock.advance(14.0)  # default heartbeat 5 s: two missed, still a candidate
    assert (await client.post("/v1/sessions", json=body, headers=alice_auth)).status_code == 201
    clock.advance(2.0)  # 16 s > 3 x 5 s: most likely gone, long before the 120 s quarantine
    resp = await client.post("/v1/sessions", json=body, headers=alice_auth)
    assert resp.status_code == 503, resp.text
    assert (await heartbeat(client, "relay-1")).status_code == 200
    assert (await client.post("/v1/sessions", json=body, headers=alice_auth)).status_code == 201


async def test_lease_rate_limit_per_requester(
    make_app: AppFactory, clock: Clock, engine: AsyncEngine
) -> None:
    app = make_app(lease_rate_limit=2, lease_rate_window_secs=60.0)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://m"
    ) as client:
        alice_auth, bob_auth = await _setup(client)
        body = {"target_wavry_id": identity(2).wavry_id}
        for _ in range(2):
            assert (
                await client.post("/v1/sessions", json=body, headers=alice_auth)
            ).status_code == 201
        resp = await client.post("/v1/sessions", json=body, headers=alice_auth)
        assert resp.status_code == 429 and "retry-after" in resp.headers
        # another requester has its own window
        resp = await client.post(
            "/v1/sessions", json={"target_wavry_id": identity(1).wavry_id}, headers=bob_auth
        )
        assert resp.status_code == 201
        clock.advance(60.0)
        assert (await heartbeat(client, "relay-1")).status_code == 200  # still alive
        assert (await client.post("/v1/sessions", json=body, headers=alice_auth)).status_code == 201
    async with make_sessionmaker(engine)() as s:
        rows = (
            await s.scalars(select(AuditEvent).where(AuditEvent.action == "lease_request"))
        ).all()
    assert [r.outcome for r in rows] == ["rate_limited"]


def _feedback(ident, session_id: str, relay_id: str, score: int, issues=()) -> dict:  # type: ignore[no-untyped-def]
    msg = feedback_message(
        session_id=session_id,
        relay_id=relay_id,
        wavry_id=ident.wavry_id,
        quality_score=score,
        issues=list(issues),
    )
    return {
        "session_id": session_id,
        "relay_id": relay_id,
        "wavry_id": ident.wavry_id,
        "quality_score": score,
        "issues": list(issues),
        "signature": ident.sign(msg).hex(),
    }


async def test_feedback_is_verified_and_tied_to_an_issued_session(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    alice_auth, _ = await _setup(client)
    alice, bob, carol = identity(1), identity(2), identity(3)
    sid = (
        await client.post(
            "/v1/sessions", json={"target_wavry_id": bob.wavry_id}, headers=alice_auth
        )
    ).json()["session_id"]

    # forged: signed by carol, claiming to be alice
    forged = _feedback(carol, sid, "relay-1", 100)
    forged["wavry_id"] = alice.wavry_id
    assert (await client.post("/v1/feedback", json=forged)).status_code == 401
    # tampered: score changed after signing
    tampered = _feedback(alice, sid, "relay-1", 0)
    tampered["quality_score"] = 100
    assert (await client.post("/v1/feedback", json=tampered)).status_code == 401
    # a stranger's valid signature: not a peer of the session
    assert (
        await client.post("/v1/feedback", json=_feedback(carol, sid, "relay-1", 0))
    ).status_code == 403
    # a session the master never issued, or the wrong relay
    other = "00000000-0000-4000-8000-000000000000"
    assert (
        await client.post("/v1/feedback", json=_feedback(alice, other, "relay-1", 0))
    ).status_code == 404
    assert (
        await client.post("/v1/feedback", json=_feedback(alice, sid, "relay-2", 0))
    ).status_code == 404
    assert (await client.post("/v1/feedback", json={"session_id": sid})).status_code == 400

    ok = await client.post("/v1/feedback", json=_feedback(alice, sid, "relay-1", 100, ["none"]))
    assert ok.status_code == 200 and ok.json() == {"accepted": True}
    again = await client.post("/v1/feedback", json=_feedback(alice, sid, "relay-1", 100))
    assert again.status_code == 409
    ok = await client.post("/v1/feedback", json=_feedback(bob, sid, "relay-1", 20))
    assert ok.status_code == 200

    async with make_sessionmaker(engine)() as s:
        relay = await s.get(Relay, "relay-1")
        assert relay is not None
        assert (relay.success_count, relay.failure_count) == (1, 1)
        assert relay.feedback_score == pytest.approx(0.9 * (0.9 * 50 + 10) + 2)
        outcomes = [
            (r.action, r.outcome)
            for r in (await s.scalars(select(AuditEvent).where(AuditEvent.action == "feedback")))
        ]
    assert outcomes.count(("feedback", "auth_failed")) == 2
    assert ("feedback", "denied") in outcomes
