"""The gateway's service lease route: POST /v1/leases/session."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.master.conftest import (
    ADMIN_AUTH,
    SIGNING_SEED,
    AppFactory,
    Clock,
    heartbeat,
    identity,
    register_relay,
)
from wavry.master import MasterSettings
from wavry.relay.lease import LeaseRejected, LeaseVerifier, key_id_for, public_key_from_private
from wavry.storage import AuditEvent, make_sessionmaker

GATEWAY_TOKEN = "g" * 48
GW_AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
PUB = public_key_from_private(SIGNING_SEED)
KID = key_id_for(PUB)
ALICE, BOB = identity(1).wavry_id, identity(2).wavry_id


@pytest.fixture
def app(make_app: AppFactory) -> FastAPI:
    return make_app(gateway_token=GATEWAY_TOKEN)


def body(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"requester_wavry_id": ALICE, "target_wavry_id": BOB}
    out.update(kw)
    return out


async def _relay(client: httpx.AsyncClient) -> None:
    await register_relay(client, "relay-1")
    for _ in range(3):
        await heartbeat(client, "relay-1")


async def _audit(engine: AsyncEngine, action: str = "service_lease") -> list[AuditEvent]:
    async with make_sessionmaker(engine)() as session:
        rows = await session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows)


@pytest.mark.parametrize("requester_role", ["client", "server"])
async def test_each_peer_gets_its_own_lease_and_role(
    client: httpx.AsyncClient, clock: Clock, engine: AsyncEngine, requester_role: str
) -> None:
    await _relay(client)
    resp = await client.post(
        "/v1/leases/session",
        json=body(requester_role=requester_role, requester_label="user-a"),
        headers=GW_AUTH,
    )
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    mine, theirs = doc["requester"], doc["target"]
    other = "server" if requester_role == "client" else "client"
    assert (mine["wavry_id"], mine["role"]) == (ALICE, requester_role)
    assert (theirs["wavry_id"], theirs["role"]) == (BOB, other)
    assert mine["session_id"] == theirs["session_id"] == doc["session_id"]
    assert doc["relay_id"] == "relay-1" and doc["relay_addr"] == "198.51.100.10:4000"
    assert mine["token"] != theirs["token"]

    verifier = LeaseVerifier({KID: PUB})
    sid = uuid.UUID(doc["session_id"]).bytes
    for lease, who in ((mine, ALICE), (theirs, BOB)):
        claims = verifier.verify(
            lease["token"], now=clock(), relay_id="relay-1", session_id=sid, role=lease["role"]
        )
        assert claims.sub == who
        wrong = "server" if lease["role"] == "client" else "client"
        with pytest.raises(LeaseRejected):
            verifier.verify(
                lease["token"], now=clock(), relay_id="relay-1", session_id=sid, role=wrong
            )
    events = await _audit(engine)
    assert [e.outcome for e in events] == ["ok"]
    assert events[0].target_id == doc["session_id"]
    assert events[0].details is not None and events[0].details["requester_label"] == "user-a"
    # no lease token ever lands in the audit log
    assert mine["token"] not in str(events[0].details)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {GATEWAY_TOKEN}"},
     {"Authorization": f"Bearer {GATEWAY_TOKEN}x"}],
)  # fmt: skip
async def test_wrong_or_missing_token_is_401_and_audited(
    client: httpx.AsyncClient, engine: AsyncEngine, headers: dict[str, str]
) -> None:
    await _relay(client)
    resp = await client.post("/v1/leases/session", json=body(), headers=headers)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert [e.outcome for e in await _audit(engine)] == ["auth_failed"]


async def test_route_disabled_without_token(make_app: AppFactory, engine: AsyncEngine) -> None:
    app = make_app()  # no gateway token configured
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as c:
        resp = await c.post("/v1/leases/session", json=body(), headers=GW_AUTH)
    assert resp.status_code == 403
    assert "WAVRY_MASTER_GATEWAY_TOKEN" in resp.json()["error"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (body(target_wavry_id="A" * 42 + "B"), 400),  # not canonical
        (body(requester_wavry_id="short"), 400),
        (body(requester_role="admin"), 400),
        (body(extra=1), 400),
        (body(region="x" * 65), 400),
    ],
)
async def test_bad_requests(client: httpx.AsyncClient, payload: dict, status: int) -> None:
    await _relay(client)
    resp = await client.post("/v1/leases/session", json=payload, headers=GW_AUTH)
    assert resp.status_code == status, resp.text


async def test_same_account_on_both_sides(client: httpx.AsyncClient, clock: Clock) -> None:
    """One account's client reaching the same account's host: one ID, two roles."""
    await _relay(client)
    resp = await client.post(
        "/v1/leases/session", json=body(target_wavry_id=ALICE), headers=GW_AUTH
    )
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert (doc["requester"]["role"], doc["target"]["role"]) == ("client", "server")
    verifier = LeaseVerifier({KID: PUB})
    sid = uuid.UUID(doc["session_id"]).bytes
    for lease in (doc["requester"], doc["target"]):
        claims = verifier.verify(
            lease["token"], now=clock(), relay_id="relay-1", session_id=sid, role=lease["role"]
        )
        assert claims.sub == ALICE


async def test_a_relay_that_failed_the_requester_is_avoided_when_another_exists(
    client: httpx.AsyncClient,
) -> None:
    for relay_id, port in (("relay-1", 4000), ("relay-2", 4001)):
        await register_relay(client, relay_id, endpoints=[f"198.51.100.10:{port}"])
        for _ in range(3):
            await heartbeat(client, relay_id)
    for _ in range(6):  # selection is randomized: relay-1 must never come back
        resp = await client.post(
            "/v1/leases/session", json=body(exclude_relay_ids=["relay-1"]), headers=GW_AUTH
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["relay_id"] == "relay-2"
    # every relay excluded: the request still gets one (a restarted relay is better than none)
    resp = await client.post(
        "/v1/leases/session",
        json=body(exclude_relay_ids=["relay-1", "relay-2"]),
        headers=GW_AUTH,
    )
    assert resp.status_code == 201 and resp.json()["relay_id"] in ("relay-1", "relay-2")
    too_many = body(exclude_relay_ids=[f"r{i}" for i in range(9)])
    assert (
        await client.post("/v1/leases/session", json=too_many, headers=GW_AUTH)
    ).status_code == 400


async def test_no_relay_is_503(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/leases/session", json=body(), headers=GW_AUTH)
    assert resp.status_code == 503
    assert resp.json()["error"] == "no relay available"


async def test_banned_identity_is_refused(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await _relay(client)
    resp = await client.post(
        "/admin/api/sessions/revoke", json={"wavry_id": BOB}, headers=ADMIN_AUTH
    )
    assert resp.status_code == 200, resp.text
    resp = await client.post("/v1/leases/session", json=body(), headers=GW_AUTH)
    assert resp.status_code == 403 and "target" in resp.json()["error"]
    resp = await client.post(
        "/v1/leases/session",
        json=body(requester_wavry_id=BOB, target_wavry_id=ALICE),
        headers=GW_AUTH,
    )
    assert resp.status_code == 403 and "requester" in resp.json()["error"]
    assert [e.outcome for e in await _audit(engine)] == ["denied", "denied"]


async def test_rate_limited_per_requester(client: httpx.AsyncClient, clock: Clock) -> None:
    await _relay(client)

    async def post(payload: dict[str, Any]) -> httpx.Response:
        return await client.post("/v1/leases/session", json=payload, headers=GW_AUTH)

    for _ in range(10):
        assert (await post(body())).status_code == 201
    resp = await post(body())
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1
    # another requester is not affected
    assert (await post(body(requester_wavry_id=identity(3).wavry_id))).status_code == 201
    clock.advance(61)
    assert (await heartbeat(client, "relay-1")).status_code == 200  # the relay is still alive
    assert (await post(body())).status_code == 201


def test_short_gateway_token_refused() -> None:
    with pytest.raises(ValueError, match="WAVRY_MASTER_GATEWAY_TOKEN"):
        MasterSettings(gateway_token="short")
    assert MasterSettings(gateway_token="  ").gateway_token is None


async def test_route_in_openapi(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/v1/leases/session"]["post"]
    assert "201" in op["responses"] and "401" in op["responses"]
