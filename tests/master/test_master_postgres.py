"""Master smoke on PostgreSQL: the same app on a migrated database of a real server.

Registration, heartbeats, identities, a lease for each peer, relay listing, admin audit and
session revoke; everything else in tests/master runs on SQLite.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.master.conftest import (
    ADMIN_AUTH,
    Clock,
    heartbeat,
    identity,
    login,
    register_identity,
    register_relay,
    settings_for,
)
from wavry.master import create_app
from wavry.storage import make_engine, upgrade


@pytest.fixture
async def pg_engine(fresh_postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(fresh_postgres_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pg_client(tmp_path: Path, pg_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    clock = Clock()
    app = create_app(
        settings_for(tmp_path),
        engine=pg_engine,
        clock=clock,
        rng=random.Random(7),
        run_background=False,
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5555))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://master") as c:
            yield c


async def test_master_on_postgresql(pg_client: httpx.AsyncClient, pg_engine: AsyncEngine) -> None:
    assert pg_engine.dialect.name == "postgresql"
    client = pg_client
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/ready")).status_code == 503  # no assignable relay yet

    await register_relay(client, "relay-1")
    await register_relay(client, "relay-2", endpoint="198.51.100.77:4000")
    for _ in range(3):
        assert (await heartbeat(client, "relay-1")).status_code == 200
        assert (await heartbeat(client, "relay-2", load=50)).status_code == 200

    resp = await client.get("/ready")
    assert resp.status_code == 200, resp.text
    assert resp.json()["relays_assignable"] == 2

    alice, bob = identity(1), identity(2)
    await register_identity(client, alice, "alice")
    await register_identity(client, bob, "bob")
    alice_auth, bob_auth = await login(client, alice), await login(client, bob)

    resp = await client.post(
        "/v1/sessions",
        json={"target_wavry_id": bob.wavry_id, "role": "client"},
        headers=alice_auth,
    )
    assert resp.status_code == 201, resp.text
    mine = resp.json()
    assert mine["role"] == "client" and mine["relay_id"] in {"relay-1", "relay-2"}
    resp = await client.post(f"/v1/sessions/{mine['session_id']}/lease", headers=bob_auth)
    assert resp.status_code == 200, resp.text
    assert resp.json()["role"] == "server"

    resp = await client.get("/v1/relays")
    assert resp.status_code == 200, resp.text
    assert {r["relay_id"] for r in resp.json()} == {"relay-1", "relay-2"}

    resp = await client.post(
        "/admin/api/sessions/revoke", json={"wavry_id": bob.wavry_id}, headers=ADMIN_AUTH
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["banned"] is True
    resp = await client.post(f"/v1/sessions/{mine['session_id']}/lease", headers=bob_auth)
    assert resp.status_code in (401, 403), resp.text

    resp = await client.get("/admin/api/audit", params={"limit": 50}, headers=ADMIN_AUTH)
    assert resp.status_code == 200, resp.text
    actions = {e["action"] for e in resp.json()}
    assert "admin_revoke" in actions
