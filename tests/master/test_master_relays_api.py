"""Relay endpoints over ASGI: register, heartbeat, list, health/ready, keys, and every refusal."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.master.conftest import (
    ADMIN_AUTH,
    RELAY_AUTH,
    SIGNING_SEED,
    AppFactory,
    Clock,
    heartbeat,
    register_relay,
    relay_body,
)
from wavry.relay.lease import key_id_for, public_key_from_private
from wavry.storage import AuditEvent, make_sessionmaker


async def _audit(engine: AsyncEngine) -> list[AuditEvent]:
    async with make_sessionmaker(engine)() as s:
        return list((await s.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def test_health_ready_and_well_known(client: httpx.AsyncClient) -> None:
    pub = public_key_from_private(SIGNING_SEED)
    health = (await client.get("/health")).json()
    assert health["status"] == "ok" and health["ready"] is False
    assert health["signing_key_id"] == key_id_for(pub)
    assert health["provisioned_signing_key"] is True
    assert health["lease_ttl_secs"] == 900
    ready = await client.get("/ready")
    assert ready.status_code == 503 and ready.json()["ready"] is False

    wk = (await client.get("/.well-known/wavry-id")).json()
    assert wk["public_key"] == pub.hex() and wk["key_id"] == key_id_for(pub)
    assert wk["keys"] == [{"key_id": key_id_for(pub), "public_key": pub.hex(), "active": True}]

    await register_relay(client)
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["relays_assignable"] == 1


async def test_register_returns_keys_and_relay_is_listed(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    body = await register_relay(client, endpoint="198.51.100.10:4000")
    pub = public_key_from_private(SIGNING_SEED)
    assert body["state"] == "new"
    assert body["master_public_key"] == pub.hex()
    assert body["trusted_keys"] == {key_id_for(pub): pub.hex()}
    assert body["heartbeat_interval_ms"] == 5000
    clock.advance(2.5)
    relays = (await client.get("/v1/relays")).json()
    assert len(relays) == 1
    assert relays[0]["relay_id"] == "relay-1" and relays[0]["last_seen_ms_ago"] == 2500
    assert relays[0]["endpoints"] == ["198.51.100.10:4000"]


async def test_heartbeat_drives_state(client: httpx.AsyncClient) -> None:
    await register_relay(client)
    states = []
    for load in (10, 10, 10, 97, 10):
        resp = await heartbeat(client, "relay-1", load)
        assert resp.status_code == 200
        states.append(resp.json()["state"])
    assert states == ["probation", "probation", "active", "degraded", "active"]


async def test_register_refusals(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    # 401: no token / wrong token
    resp = await client.post("/v1/relays/register", json=relay_body())
    assert resp.status_code == 401 and "error" in resp.json()
    resp = await client.post(
        "/v1/relays/register", json=relay_body(), headers={"Authorization": "Bearer nope"}
    )
    assert resp.status_code == 401
    # 400: bandwidth, endpoints, body validation
    for bad in (
        relay_body(max_bitrate_kbps=9999),
        relay_body(endpoints=[]),
        relay_body(endpoints=["0.0.0.0:4000"]),
        relay_body(endpoints=["relay.example:4000"]),
        relay_body(endpoints=["198.51.100.1:0"]),
        relay_body(relay_id=""),
        {"relay_id": "x"},
    ):
        resp = await client.post("/v1/relays/register", json=bad, headers=RELAY_AUTH)
        assert resp.status_code == 400, bad
        assert "error" in resp.json()
    events = await _audit(engine)
    assert [(e.action, e.outcome) for e in events] == [("relay_register", "auth_failed")] * 2
    assert all(len(e.actor_ip_hash) == 64 and "203.0.113.9" not in e.actor_ip_hash for e in events)


async def test_heartbeat_refusals(client: httpx.AsyncClient) -> None:
    resp = await heartbeat(client, "ghost")
    assert resp.status_code == 404
    await register_relay(client)
    resp = await client.post("/v1/relays/heartbeat", json={"relay_id": "relay-1", "load_pct": 5})
    assert resp.status_code == 401
    for load in (-1, 101):
        assert (await heartbeat(client, "relay-1", load)).status_code == 400


async def test_banned_relay_cannot_register_or_heartbeat(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register_relay(client)
    resp = await client.post(
        "/admin/api/relays/update_state",
        json={"relay_id": "relay-1", "new_state": "banned"},
        headers=ADMIN_AUTH,
    )
    assert resp.status_code == 200 and resp.json()["state"] == "banned"
    assert (await heartbeat(client, "relay-1")).status_code == 403
    resp = await client.post("/v1/relays/register", json=relay_body(), headers=RELAY_AUTH)
    assert resp.status_code == 403
    actions = [(e.action, e.outcome) for e in await _audit(engine)]
    assert ("admin_relay_state", "ok") in actions
    assert ("relay_heartbeat", "denied") in actions
    assert ("relay_register", "denied") in actions


async def test_sybil_limit_by_ipv4_24(make_app: AppFactory) -> None:
    app = make_app(sybil_max_per_subnet=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
        await register_relay(client, "a", endpoint="10.0.0.1:4000")
        await register_relay(client, "b", endpoint="10.0.0.200:4000")
        resp = await client.post(
            "/v1/relays/register", json=relay_body("c", "10.0.0.10:4000"), headers=RELAY_AUTH
        )
        assert resp.status_code == 403 and "10.0.0.0/24" in resp.json()["error"]
        # another /24 is fine, even one whose string starts with the same characters
        await register_relay(client, "d", endpoint="10.0.1.1:4000")
        await register_relay(client, "e", endpoint="10.0.10.1:4000")
        # re-registering an existing relay does not count against itself
        await register_relay(client, "a", endpoint="10.0.0.1:4000")


async def test_sybil_limit_by_ipv6_48(make_app: AppFactory) -> None:
    app = make_app(sybil_max_per_subnet=1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
        await register_relay(client, "a", endpoint="[2001:db8:1::1]:4000")
        resp = await client.post(
            "/v1/relays/register",
            json=relay_body("b", "[2001:db8:1:ffff::9]:4000"),
            headers=RELAY_AUTH,
        )
        assert resp.status_code == 403 and "2001:db8:1::/48" in resp.json()["error"]
        await register_relay(client, "c", endpoint="[2001:db8:2::1]:4000")


async def test_open_registration_without_relay_token(make_app: AppFactory) -> None:
    app = make_app(relay_auth_token=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
        resp = await client.post("/v1/relays/register", json=relay_body())
        assert resp.status_code == 200


async def test_openapi_is_published(client: httpx.AsyncClient) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    spec = resp.json()
    assert "/v1/auth/register/verify" in spec["paths"] and "/.well-known/wavry-id" in spec["paths"]
    assert "422" not in resp.text  # validation errors are documented as 400


async def test_metrics_count_relays_by_state(client: httpx.AsyncClient, clock: Clock) -> None:
    await register_relay(client, "relay-1")
    await register_relay(client, "relay-2", endpoints=["198.51.100.9:4000"])
    for _ in range(3):
        assert (await heartbeat(client, "relay-1")).status_code == 200
    resp = await client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in resp.text.splitlines()
        if line and not line.startswith("#")
    }
    assert values['wavry_master_relays{state="active"}'] == 1
    assert values['wavry_master_relays{state="new"}'] == 1
    assert values['wavry_master_relays{state="banned"}'] == 0
    assert values["wavry_master_relays_assignable"] == 2
    clock.advance(60.0)  # both missed their heartbeats: not assignable, still registered
    resp = await client.get("/metrics")
    assert "wavry_master_relays_assignable 0" in resp.text
