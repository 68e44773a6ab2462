"""REQUEST_RELAY against a REAL master (its app on uvicorn, a temp database, a registered relay):
each peer receives its own lease, with its own role, that the relay's LeaseVerifier accepts."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.signaling.conftest import Gateway, GatewayFactory, run_gateway
from wavry.gateway.signaling.hub import account_subject
from wavry.master import MasterSettings
from wavry.master import create_app as create_master
from wavry.relay.lease import LeaseRejected, LeaseVerifier, key_id_for, public_key_from_private
from wavry.rift.identity import Identity
from wavry.storage import make_engine, upgrade

SEED = bytes(range(32))
PUB = public_key_from_private(SEED)
KID = key_id_for(PUB)
SERVICE_TOKEN = "m" * 40
RELAY_TOKEN = "relay-token"


@contextlib.asynccontextmanager
async def _master(tmp_path: Path, relays: int = 1) -> AsyncIterator[Gateway]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'master.db'}")
    await upgrade(engine)
    settings = MasterSettings(
        data_dir=tmp_path,
        signing_key=SEED.hex(),
        relay_auth_token=RELAY_TOKEN,
        gateway_token=SERVICE_TOKEN,
    )
    app = create_master(settings, engine=engine, rng=random.Random(3), run_background=False)
    try:
        async with run_gateway(app) as server:  # any ASGI app: uvicorn on 127.0.0.1
            auth = {"Authorization": f"Bearer {RELAY_TOKEN}"}
            for n in range(relays):
                body = {"relay_id": f"relay-{n}", "endpoints": [f"127.0.0.1:{4000 + n}"],
                        "max_bitrate_kbps": 20000}  # fmt: skip
                resp = await server.http.post("/v1/relays/register", json=body, headers=auth)
                assert resp.status_code == 200, resp.text
                for _ in range(3):
                    beat = {"relay_id": f"relay-{n}", "load_pct": 5}
                    resp = await server.http.post("/v1/relays/heartbeat", json=beat, headers=auth)
                    assert resp.status_code == 200, resp.text
            yield server
    finally:
        await engine.dispose()


@pytest.fixture
async def master(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with _master(tmp_path / "m") as m:
        yield m


def _gateway(factory: GatewayFactory, master_url: str | None, **sig: object) -> object:
    signaling = {"master_token": SERVICE_TOKEN, **sig}
    return factory(master_url=master_url, signaling=signaling)


async def _bind_wavry_id(gw: Gateway, token: str, ident: Identity) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    resp = await gw.http.post("/auth/challenge", json={"wavry_id": ident.wavry_id}, headers=auth)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    sig = ident.sign(bytes.fromhex(doc["message_hex"]))
    resp = await gw.http.post(
        "/auth/challenge/verify",
        json={"challenge": doc["challenge"], "signature_hex": sig.hex()},
        headers=auth,
    )
    assert resp.status_code == 200, resp.text


async def test_each_peer_gets_its_own_lease(
    gateway_factory: GatewayFactory, master: Gateway
) -> None:
    host_identity = Identity.from_seed(b"\x07" * 32)
    async with _gateway(gateway_factory, master.http_url) as gw:  # type: ignore[attr-defined]
        bob, carol = await gw.register("bob"), await gw.register("carol")
        await gw.share(bob, "carol")
        await _bind_wavry_id(gw, bob, host_identity)  # bob's host has a bound Wavry ID
        host = await gw.bind(bob, "host")
        client = await gw.bind(carol, "client")
        rdv = str(uuid.uuid4())
        await client.send({"type": "REQUEST_RELAY", "target_username": "bob", "session_id": rdv})
        mine = await client.expect("RELAY_CREDENTIALS")
        theirs = await host.expect("RELAY_CREDENTIALS")

    assert mine["role"] == "client" and theirs["role"] == "server"
    assert mine["target_username"] == "bob" and theirs["target_username"] == "carol"
    assert mine["session_id"] == theirs["session_id"]
    assert mine["rendezvous_id"] == theirs["rendezvous_id"] == rdv
    assert mine["relay_id"] == theirs["relay_id"] == "relay-0"
    assert mine["addr"] == "127.0.0.1:4000"
    assert mine["lease"] != theirs["lease"]
    assert mine["expires_at"] > time.time() + 60

    verifier = LeaseVerifier({KID: PUB})
    sid = uuid.UUID(mine["session_id"]).bytes
    carol_id = gw.users["carol"]["user"]["id"]
    for creds, sub in ((mine, account_subject(carol_id)), (theirs, host_identity.wavry_id)):
        claims = verifier.verify(
            creds["lease"], now=time.time(), relay_id="relay-0", session_id=sid, role=creds["role"]
        )
        assert claims.sub == sub and claims.role == creds["role"]
        other = "server" if creds["role"] == "client" else "client"
        with pytest.raises(LeaseRejected):
            verifier.verify(
                creds["lease"], now=time.time(), relay_id="relay-0", session_id=sid, role=other
            )


async def test_a_relay_that_failed_the_client_is_avoided(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    async with _master(tmp_path / "m2", relays=2) as master2:
        async with _gateway(gateway_factory, master2.http_url) as gw:  # type: ignore[attr-defined]
            bob, carol = await gw.register("bob"), await gw.register("carol")
            await gw.share(bob, "carol")
            host = await gw.bind(bob, "host")
            client = await gw.bind(carol, "client")
            for _ in range(4):  # selection is randomized: relay-0 must never come back
                await client.send({"type": "REQUEST_RELAY", "target_username": "bob",
                                   "avoid_relay_ids": ["relay-0"]})  # fmt: skip
                mine = await client.expect("RELAY_CREDENTIALS")
                theirs = await host.expect("RELAY_CREDENTIALS")
                assert mine["relay_id"] == theirs["relay_id"] == "relay-1"
            await client.send({"type": "REQUEST_RELAY", "target_username": "bob",
                               "avoid_relay_ids": ["x"] * 5})  # fmt: skip
            await client.expect_error("bad_message")


async def test_after_relay_credentials_the_host_may_answer(
    gateway_factory: GatewayFactory, master: Gateway
) -> None:
    async with _gateway(gateway_factory, master.http_url) as gw:  # type: ignore[attr-defined]
        token = await gw.register("alice")
        host = await gw.bind(token, "host")
        client = await gw.bind(token, "client")
        await client.send({"type": "REQUEST_RELAY", "target_username": "alice"})
        await client.expect("RELAY_CREDENTIALS")
        await host.expect("RELAY_CREDENTIALS")
        cands = [{"addr": "127.0.0.1:4000", "type": "relay"}]
        await host.send({"type": "CANDIDATE", "target_username": "alice", "candidates": cands})
        assert (await client.expect("CANDIDATE"))["candidates"] == cands


async def test_relay_refusals(
    gateway_factory: GatewayFactory, master: Gateway, tmp_path: Path
) -> None:
    async with _gateway(gateway_factory, master.http_url, relay_rate_limit=1) as gw:  # type: ignore[attr-defined]
        bob, carol, dave = [await gw.register(n) for n in ("bob", "carol", "dave")]
        await gw.share(bob, "carol")
        client = await gw.bind(carol, "client")
        await client.send({"type": "REQUEST_RELAY", "target_username": "bob"})
        await client.expect_error("target_offline")  # checked before a lease is spent
        stranger = await gw.bind(dave, "client")
        await stranger.send({"type": "REQUEST_RELAY", "target_username": "bob"})
        await stranger.expect_error("not_shared")
        host = await gw.bind(bob, "host")
        await client.send({"type": "REQUEST_RELAY", "target_username": "bob"})
        await client.expect_error("relay_rate_limited")  # 1 per window, spent above
        await host.silent()


@pytest.mark.parametrize("case", ["unconfigured", "unreachable", "wrong_token", "no_relay"])
async def test_relay_unavailable(
    gateway_factory: GatewayFactory, tmp_path: Path, case: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url: str | None
        token = SERVICE_TOKEN
        if case == "unconfigured":
            url = None
        elif case == "unreachable":
            with socket.socket() as s:  # a port nothing listens on
                s.bind(("127.0.0.1", 0))
                url = f"http://127.0.0.1:{s.getsockname()[1]}"
        else:
            m = await stack.enter_async_context(
                _master(tmp_path / case, relays=0 if case == "no_relay" else 1)
            )
            url = m.http_url
            if case == "wrong_token":
                token = "w" * 40
        gw = await stack.enter_async_context(
            gateway_factory(master_url=url, signaling={"master_token": token})
        )
        alice = await gw.register("alice")
        host = await gw.bind(alice, "host")
        client = await gw.bind(alice, "client")
        await client.send({"type": "REQUEST_RELAY", "target_username": "alice"})
        err = await client.expect_error("relay_unavailable")
        assert SERVICE_TOKEN not in err["message"] and "w" * 40 not in err["message"]
        await host.silent()


async def test_master_client_parses_and_times_out(master: Gateway) -> None:
    from wavry.gateway.signaling.master_client import MasterClient, MasterError, MasterErrorKind

    client = MasterClient(master.http_url, SERVICE_TOKEN, timeout=2)
    try:
        a, b = Identity.from_seed(b"\x01" * 32).wavry_id, Identity.from_seed(b"\x02" * 32).wavry_id
        leases = await client.open_session(requester_wavry_id=a, target_wavry_id=b)
        assert (leases.requester.role, leases.target.role) == ("client", "server")
        with pytest.raises(MasterError) as info:
            await client.open_session(requester_wavry_id=a, target_wavry_id="A" * 42 + "B")
        assert info.value.kind is MasterErrorKind.REFUSED and info.value.status == 400
    finally:
        await client.aclose()

    # a server that accepts and never answers: the time budget holds
    async def silent(_r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = MasterClient(f"http://127.0.0.1:{port}", SERVICE_TOKEN, timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(MasterError) as info:
            await client.open_session(requester_wavry_id=a, target_wavry_id=b)
        assert info.value.kind is MasterErrorKind.UNAVAILABLE
        assert time.monotonic() - started < 2
    finally:
        await client.aclose()
        server.close()


async def test_control_plane_relays_out_of_the_box(tmp_path: Path) -> None:
    """`wavry control-plane`: gateway and master share a per-run service token by themselves."""
    import websockets

    from tests.gateway.signaling.conftest import Peer, gateway_settings
    from wavry.gateway.control_plane import ControlPlane

    gateway = gateway_settings(tmp_path, listen="127.0.0.1:0")
    plane = ControlPlane(gateway, MasterSettings(listen="127.0.0.1:0", data_dir=tmp_path))
    await plane.start()
    try:
        async with httpx.AsyncClient(base_url=plane.gateway_url) as c:
            body = {"relay_id": "r1", "endpoints": ["198.51.100.1:4000"], "max_bitrate_kbps": 20000}
            reg = await c.post(f"{plane.master_url}/v1/relays/register", json=body)
            assert reg.status_code == 200, reg.text
            resp = await c.post("/auth/register", json={
                "email": "a@example.com", "password": "correct horse battery",
                "username": "alice", "display_name": "A", "public_key": "ab" * 32,
            })  # fmt: skip
            token = resp.json()["token"]
        ws_url = plane.gateway_url.replace("http://", "ws://") + "/ws"
        peers = []
        for role in ("host", "client"):
            peer = Peer(await websockets.connect(ws_url))
            await peer.send({"type": "BIND", "token": token, "role": role})
            await peer.expect("BOUND")
            peers.append(peer)
        host, client = peers
        await client.send({"type": "REQUEST_RELAY", "target_username": "alice"})
        assert (await client.expect("RELAY_CREDENTIALS"))["role"] == "client"
        assert (await host.expect("RELAY_CREDENTIALS"))["role"] == "server"
        for peer in peers:
            await peer.close()
    finally:
        await plane.stop()
