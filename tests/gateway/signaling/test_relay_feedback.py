"""Relay feedback through the gateway and connect by Wavry ID, against a REAL gateway and a REAL
master (both on uvicorn on 127.0.0.1, a registered relay): bob asks for a relay to alice's host
over signaling, then reports the session's quality with ``send_relay_feedback``; the master's
relay scores move, and forged, repeated or borrowed reports are refused."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.gateway.signaling.conftest import Gateway, GatewayFactory, run_gateway
from tests.gateway.signaling.test_signaling_relay import (
    RELAY_TOKEN,
    SEED,
    SERVICE_TOKEN,
    _master,
)
from wavry.feedback_protocol import feedback_message
from wavry.gateway.signaling.messages import RelayCredentials, RequestRelay
from wavry.master import MasterSettings
from wavry.master import create_app as create_master
from wavry.net.gateway_api import (
    BindOutcome,
    GatewayApiError,
    ensure_wavry_id_bound,
    resolve_wavry_id,
    send_relay_feedback,
)
from wavry.net.signaling import SignalingSession
from wavry.rift.identity import Identity
from wavry.storage import make_engine, upgrade
from wavry.storage.models import Relay

ALICE = Identity.from_seed(b"\xa1" * 32)
BOB = Identity.from_seed(b"\xb0" * 32)
CAROL = Identity.from_seed(b"\xc0" * 32)


@pytest.fixture
async def pair(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, Path]]:
    """A gateway wired to a master with one relay; yields the gateway and the master's db."""
    async with (
        _master(tmp_path / "m") as master,
        gateway_factory(
            master_url=master.http_url, signaling={"master_token": SERVICE_TOKEN}
        ) as gw,
    ):
        yield gw, tmp_path / "m" / "master.db"


async def _relay_row(db: Path) -> tuple[float, int, int]:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(Relay.feedback_score, Relay.success_count, Relay.failure_count).where(
                        Relay.relay_id == "relay-0"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return float(row[0]), int(row[1]), int(row[2])


async def _accounts(gw: Gateway) -> dict[str, str]:
    tokens = {name: await gw.register(name) for name in ("alice", "bob", "carol")}
    await gw.share(tokens["alice"], "bob")
    for name, ident in (("alice", ALICE), ("bob", BOB), ("carol", CAROL)):
        result = await ensure_wavry_id_bound(gw.http_url, tokens[name], ident)
        assert result.outcome is BindOutcome.BOUND and result.bound_wavry_id == ident.wavry_id
    return tokens


async def _relay_session(gw: Gateway, tokens: dict[str, str]) -> tuple[RelayCredentials, Any]:
    """bob REQUEST_RELAYs alice's host; returns bob's credentials and alice's."""
    host = await SignalingSession.open(gw.ws_url, tokens["alice"], "host")
    client = await SignalingSession.open(gw.ws_url, tokens["bob"], "client")
    try:
        await client.send(RequestRelay(target_username="alice", session_id=str(uuid.uuid4())))
        mine = await client.recv(5)
        theirs = await host.recv(5)
    finally:
        await client.close()
        await host.close()
    assert isinstance(mine, RelayCredentials), mine
    assert isinstance(theirs, RelayCredentials), theirs
    assert mine.session_id == theirs.session_id and mine.role == "client"
    return mine, theirs


async def test_feedback_moves_the_relay_scores_once_per_peer(pair: tuple[Gateway, Path]) -> None:
    gw, db = pair
    tokens = await _accounts(gw)
    mine, theirs = await _relay_session(gw, tokens)
    before = await _relay_row(db)
    assert before == (50.0, 0, 0)

    await send_relay_feedback(
        gw.http_url, tokens["bob"], BOB, relay_id=mine.relay_id, session_id=mine.session_id,
        quality_score=90, issues=[],
    )  # fmt: skip
    score, ok, failed = await _relay_row(db)
    assert (ok, failed) == (1, 0)
    assert score == pytest.approx(0.9 * 50 + 0.1 * 90)

    with pytest.raises(GatewayApiError) as info:  # once per peer and session
        await send_relay_feedback(
            gw.http_url, tokens["bob"], BOB, relay_id=mine.relay_id, session_id=mine.session_id,
            quality_score=10, issues=["packet_loss"],
        )  # fmt: skip
    assert info.value.status == 409 and "already" in info.value.message
    assert await _relay_row(db) == (score, 1, 0)

    # the host's side reports too (it is the other peer), a poor session this time
    await send_relay_feedback(
        gw.http_url, tokens["alice"], ALICE, relay_id=theirs.relay_id,
        session_id=theirs.session_id, quality_score=20, issues=["packet_loss", "frame_loss"],
    )  # fmt: skip
    score2, ok, failed = await _relay_row(db)
    assert (ok, failed) == (1, 1)
    assert score2 == pytest.approx(0.9 * score + 0.1 * 20)


async def test_forged_borrowed_and_foreign_reports_are_refused(
    pair: tuple[Gateway, Path],
) -> None:
    gw, db = pair
    tokens = await _accounts(gw)
    mine, _ = await _relay_session(gw, tokens)
    auth = {"Authorization": f"Bearer {tokens['bob']}"}
    body = {
        "session_id": mine.session_id, "relay_id": mine.relay_id, "wavry_id": BOB.wavry_id,
        "quality_score": 100, "issues": [],
    }  # fmt: skip

    # signed by another key in bob's name: the master's signature check
    forged = CAROL.sign(feedback_message(**body)).hex()
    resp = await gw.http.post(
        "/v1/relay-feedback", json={**body, "signature": forged}, headers=auth
    )
    assert resp.status_code == 403 and "signature" in resp.json()["error"], resp.text
    # a valid signature over other numbers than those sent
    other = BOB.sign(feedback_message(**{**body, "quality_score": 0})).hex()
    resp = await gw.http.post("/v1/relay-feedback", json={**body, "signature": other}, headers=auth)
    assert resp.status_code == 403, resp.text

    # bob's report sent with carol's session: the gateway refuses before the master sees it
    good = BOB.sign(feedback_message(**body)).hex()
    carol_auth = {"Authorization": f"Bearer {tokens['carol']}"}
    resp = await gw.http.post(
        "/v1/relay-feedback", json={**body, "signature": good}, headers=carol_auth
    )
    assert resp.status_code == 403 and "bound Wavry ID" in resp.json()["error"], resp.text
    # carol, signing correctly with her own key, is not a peer of bob's session (the master)
    with pytest.raises(GatewayApiError) as info:
        await send_relay_feedback(
            gw.http_url, tokens["carol"], CAROL, relay_id=mine.relay_id,
            session_id=mine.session_id, quality_score=0, issues=[],
        )  # fmt: skip
    assert info.value.status == 403 and "not a peer" in info.value.message
    # an unknown session
    with pytest.raises(GatewayApiError) as info:
        await send_relay_feedback(
            gw.http_url, tokens["bob"], BOB, relay_id=mine.relay_id,
            session_id=str(uuid.uuid4()), quality_score=0, issues=[],
        )  # fmt: skip
    assert info.value.status == 404
    # no session token
    with pytest.raises(GatewayApiError) as info:
        await send_relay_feedback(
            gw.http_url, "x" * 43, BOB, relay_id=mine.relay_id, session_id=mine.session_id,
            quality_score=0, issues=[],
        )  # fmt: skip
    assert info.value.status == 401 and "wavry login" in info.value.message
    assert await _relay_row(db) == (50.0, 0, 0)  # none of it counted

    # and the real report still goes through afterwards
    await send_relay_feedback(
        gw.http_url, tokens["bob"], BOB, relay_id=mine.relay_id, session_id=mine.session_id,
        quality_score=100, issues=[],
    )  # fmt: skip
    assert (await _relay_row(db))[1] == 1
    metrics = (await gw.http.get("/metrics")).text
    assert "wavry_gateway_relay_feedback_forwarded_total 1" in metrics
    assert "wavry_gateway_relay_feedback_refused_total 5" in metrics


async def test_feedback_needs_a_bound_id_and_a_master(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory() as gw:  # no master configured
        token = await gw.register("dave")
        with pytest.raises(GatewayApiError) as info:  # no bound Wavry ID yet
            await send_relay_feedback(
                gw.http_url, token, BOB, relay_id="relay-0", session_id=str(uuid.uuid4()),
                quality_score=50, issues=[],
            )  # fmt: skip
        assert info.value.status == 403 and "no bound Wavry ID" in info.value.message
        await ensure_wavry_id_bound(gw.http_url, token, BOB)
        with pytest.raises(GatewayApiError) as info:
            await send_relay_feedback(
                gw.http_url, token, BOB, relay_id="relay-0", session_id=str(uuid.uuid4()),
                quality_score=50, issues=[],
            )  # fmt: skip
        assert info.value.status == 503 and "no master" in info.value.message


async def test_unreachable_gateway_is_a_typed_error() -> None:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening
        with pytest.raises(GatewayApiError) as info:
            await resolve_wavry_id(url, "t" * 43, ALICE.wavry_id, timeout=2)
    assert info.value.status is None and "cannot reach" in info.value.message


async def test_resolve_wavry_id_only_for_hosts_the_caller_may_reach(gw: Gateway) -> None:
    tokens = await _accounts(gw)
    # bob is shared alice's hosts; alice reaches her own; carol may not reach alice
    assert await resolve_wavry_id(gw.http_url, tokens["bob"], ALICE.wavry_id) == "alice"
    assert await resolve_wavry_id(gw.http_url, tokens["alice"], ALICE.wavry_id) == "alice"
    unknown = Identity.from_seed(b"\x55" * 32).wavry_id
    answers = []
    for token, wid in ((tokens["carol"], ALICE.wavry_id), (tokens["carol"], unknown)):
        with pytest.raises(GatewayApiError) as info:
            await resolve_wavry_id(gw.http_url, token, wid)
        assert info.value.status == 404 and "no host you may connect to" in info.value.message
        resp = await gw.http.get(
            f"/v1/hosts/by-wavry-id/{wid}", headers={"Authorization": f"Bearer {token}"}
        )
        answers.append((resp.status_code, resp.json()))
    assert answers[0] == answers[1]  # not shared and unknown look the same
    with pytest.raises(GatewayApiError) as info:
        await resolve_wavry_id(gw.http_url, tokens["bob"], "not-a-wavry-id")
    assert info.value.status == 400
    resp = await gw.http.get(f"/v1/hosts/by-wavry-id/{ALICE.wavry_id}")
    assert resp.status_code == 401
    # a removed share stops the lookup at once
    resp = await gw.http.delete(
        "/v1/shares/bob", headers={"Authorization": f"Bearer {tokens['alice']}"}
    )
    assert resp.json() == {"removed": True}
    with pytest.raises(GatewayApiError):
        await resolve_wavry_id(gw.http_url, tokens["bob"], ALICE.wavry_id)


async def test_lookups_are_rate_limited(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(post_auth_rate_limit=3) as gw:
        token = await gw.register("erin")
        unknown = Identity.from_seed(b"\x66" * 32).wavry_id
        for _ in range(3):
            with pytest.raises(GatewayApiError) as info:
                await resolve_wavry_id(gw.http_url, token, unknown)
            assert info.value.status == 404
        with pytest.raises(GatewayApiError) as info:
            await resolve_wavry_id(gw.http_url, token, unknown)
        assert info.value.status == 429 and "rate limited" in info.value.message


@contextlib.asynccontextmanager
async def _strict_master(path: Path) -> AsyncIterator[Gateway]:
    """A master accepting ONE feedback per minute per key, with one relay."""
    path.mkdir(parents=True)
    engine = make_engine(f"sqlite+aiosqlite:///{path / 'master.db'}")
    await upgrade(engine)
    settings = MasterSettings(
        data_dir=path, signing_key=SEED.hex(), relay_auth_token=RELAY_TOKEN,
        gateway_token=SERVICE_TOKEN, feedback_rate_limit_per_min=1,
    )  # fmt: skip
    app = create_master(settings, engine=engine, rng=random.Random(3), run_background=False)
    try:
        async with run_gateway(app) as server:
            auth = {"Authorization": f"Bearer {RELAY_TOKEN}"}
            body = {"relay_id": "relay-0", "endpoints": ["127.0.0.1:4000"],
                    "max_bitrate_kbps": 20000}  # fmt: skip
            resp = await server.http.post("/v1/relays/register", json=body, headers=auth)
            assert resp.status_code == 200, resp.text
            for _ in range(3):
                beat = {"relay_id": "relay-0", "load_pct": 5}
                resp = await server.http.post("/v1/relays/heartbeat", json=beat, headers=auth)
                assert resp.status_code == 200, resp.text
            yield server
    finally:
        await engine.dispose()


async def test_the_master_limits_forwarded_feedback_per_wavry_id_not_per_gateway(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Every report through one gateway comes from its address: the master keys the limit on
    the Wavry ID when the gateway's service token comes with it, so two users do not share it."""
    async with (
        _strict_master(tmp_path / "strict") as master,
        gateway_factory(
            master_url=master.http_url, signaling={"master_token": SERVICE_TOKEN}
        ) as gw,
    ):
        tokens = await _accounts(gw)
        mine, theirs = await _relay_session(gw, tokens)
        await send_relay_feedback(
            gw.http_url, tokens["bob"], BOB, relay_id=mine.relay_id,
            session_id=mine.session_id, quality_score=80, issues=[],
        )  # fmt: skip
        await send_relay_feedback(  # alice, same gateway address: her own budget
            gw.http_url, tokens["alice"], ALICE, relay_id=theirs.relay_id,
            session_id=theirs.session_id, quality_score=80, issues=[],
        )  # fmt: skip
        with pytest.raises(GatewayApiError) as info:  # bob again: over his budget
            await send_relay_feedback(
                gw.http_url, tokens["bob"], BOB, relay_id=mine.relay_id,
                session_id=mine.session_id, quality_score=80, issues=[],
            )  # fmt: skip
        assert info.value.status == 429
        # without the service token the limit is per address: this client used it up once
        body = {"session_id": mine.session_id, "relay_id": mine.relay_id,
                "wavry_id": CAROL.wavry_id, "quality_score": 1, "issues": []}  # fmt: skip
        signed = {**body, "signature": CAROL.sign(feedback_message(**body)).hex()}
        assert (await master.http.post("/v1/feedback", json=signed)).status_code == 403
        assert (await master.http.post("/v1/feedback", json=signed)).status_code == 429
        wrong = {"Authorization": "Bearer " + "w" * 40}  # a wrong token does not lift it
        resp = await master.http.post("/v1/feedback", json=signed, headers=wrong)
        assert resp.status_code == 429


async def test_an_unreachable_or_silent_master_is_a_clear_5xx(
    gateway_factory: GatewayFactory,
) -> None:
    silent_conns: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        silent_conns.append(w)

    silent = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        dead_url = f"http://127.0.0.1:{s.getsockname()[1]}"
        silent_url = f"http://127.0.0.1:{silent.sockets[0].getsockname()[1]}"
        try:
            for url, status, text in (
                (dead_url, 502, "cannot deliver"),
                (silent_url, 504, "in time"),
            ):
                sig = {"master_token": SERVICE_TOKEN, "master_timeout_secs": 0.5}
                async with gateway_factory(master_url=url, signaling=sig) as gw:
                    token = await gw.register(f"frank{status}")
                    me = Identity.from_seed(bytes([status % 256]) * 32)
                    await ensure_wavry_id_bound(gw.http_url, token, me)
                    with pytest.raises(GatewayApiError) as info:
                        await send_relay_feedback(
                            gw.http_url, token, me, relay_id="relay-0",
                            session_id=str(uuid.uuid4()), quality_score=50, issues=[],
                        )  # fmt: skip
                    assert info.value.status == status and text in info.value.message
                    assert SERVICE_TOKEN not in info.value.message
        finally:
            for w in silent_conns:
                w.close()
            silent.close()
            await silent.wait_closed()
