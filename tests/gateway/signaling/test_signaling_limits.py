"""Every signaling rule, refused over a real socket: origin, caps, frames, rate, bind."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.gateway.signaling.conftest import ORIGIN, Gateway, GatewayFactory
from wavry.gateway.signaling.limits import SERVER_WS_MAX_SIZE
from wavry.gateway.signaling.messages import MAX_FRAME_BYTES


async def _status_of_refusal(gw: Gateway, **kw: object) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(gw.ws_url, open_timeout=5, **kw)  # type: ignore[arg-type]
    return info.value.response.status_code, info.value.response.body or b""


async def test_origin_allow_list(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(signaling={"allow_missing_origin": False}) as gw:
        token = await gw.register("alice")
        status, body = await _status_of_refusal(gw)  # native client without Origin
        assert status == 403 and b"WAVRY_WS_ALLOW_MISSING_ORIGIN" in body
        status, body = await _status_of_refusal(gw, origin="http://evil.example")
        assert status == 403 and b"origin not allowed" in body
        peer = await gw.bind(token, origin=ORIGIN)
        await peer.close()
        peer = await gw.bind(token, origin=ORIGIN.upper() + "/")  # case, trailing slash
        await peer.close()
    async with gateway_factory(signaling={"allow_missing_origin": True}) as gw:
        token = await gw.register("alice2")
        await (await gw.bind(token)).close()
        # a browser from a foreign origin stays refused even when native clients are allowed
        status, _ = await _status_of_refusal(gw, origin="http://evil.example")
        assert status == 403


async def test_per_ip_and_total_caps(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(signaling={"max_per_ip": 2, "max_connections": 100}) as gw:
        first, second = await gw.connect(), await gw.connect()
        status, body = await _status_of_refusal(gw)
        assert status == 429 and b"too many" in body
        await first.close()
        await first.ws.wait_closed()
        for _ in range(50):  # the slot is freed once the server has seen the close
            try:
                third = await gw.connect()
                break
            except InvalidStatus:
                await asyncio.sleep(0.02)
        else:
            raise AssertionError("slot never freed")
        await third.close()
        await second.close()
    async with gateway_factory(signaling={"max_per_ip": 100, "max_connections": 2}) as gw:
        peers = [await gw.connect(), await gw.connect()]
        status, _ = await _status_of_refusal(gw)
        assert status == 503
        for p in peers:
            await p.close()


async def test_anything_before_bind_closes(gw: Gateway) -> None:
    peer = await gw.connect()
    await peer.send({"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": "AAAA"})
    await peer.expect_error("not_bound")
    await peer.expect_closed(1008)


async def test_invalid_token(gw: Gateway) -> None:
    peer = await gw.connect()
    await peer.send({"type": "BIND", "token": "x" * 64})
    await peer.expect_error("invalid_token")
    await peer.expect_closed(4001)


async def test_second_bind_closes(gw: Gateway) -> None:
    token = await gw.register("alice")
    peer = await gw.bind(token)
    await peer.send({"type": "BIND", "token": token})
    await peer.expect_error("already_bound")
    await peer.expect_closed(1008)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("[1,2]", "bad_json"),
        ('{"type":"BIND","token":"' + "x" * 64 + '","token":"y"}', "bad_json"),
        ('{"type":"Bind","payload":{"token":"abc"}}', "bad_message"),
        ('{"type":"BIND"}', "bad_message"),
        ('{"type":"BIND","token":"' + "x" * 64 + '","role":"admin"}', "bad_message"),
    ],
)
async def test_malformed_frames_close(gw: Gateway, frame: str, code: str) -> None:
    peer = await gw.connect()
    await peer.ws.send(frame)
    await peer.expect_error(code)
    await peer.expect_closed(1008)


async def test_malformed_after_bind_closes(gw: Gateway) -> None:
    token = await gw.register("alice")
    peer = await gw.bind(token, "host")
    await peer.send({"type": "CANDIDATE", "target_username": "x", "candidates": []})
    err = await peer.expect_error("bad_message")
    assert "candidates" in err["message"]
    await peer.expect_closed(1008)


async def test_binary_frame_closes(gw: Gateway) -> None:
    peer = await gw.connect()
    await peer.ws.send(b'{"type":"BIND"}')
    await peer.expect_error("binary_frame")
    await peer.expect_closed(1003)


async def test_oversized_frames(gw: Gateway) -> None:
    token = await gw.register("alice")
    peer = await gw.bind(token)
    await peer.ws.send("x" * (MAX_FRAME_BYTES + 1))
    await peer.expect_error("too_large")
    await peer.expect_closed(1009)
    # beyond the server's own frame limit the connection is cut by the server (1009 too)
    peer = await gw.bind(token)
    await peer.ws.send("x" * (SERVER_WS_MAX_SIZE + 1))
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await peer.ws.recv()
    assert peer.ws.close_code == 1009


async def test_message_rate_cap(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(signaling={"msg_rate_limit": 5}) as gw:
        token = await gw.register("alice")
        peer = await gw.bind(token)  # 1
        for _ in range(4):  # 2..5
            await peer.send({"type": "WATCH", "usernames": []})
            await peer.expect("WATCHING")
        await peer.send({"type": "WATCH", "usernames": []})  # 6
        await peer.expect_error("rate_limited")
        await peer.expect_closed(4029)


async def test_bind_deadline_is_a_timer(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(signaling={"bind_timeout_secs": 0.3}) as gw:
        peer = await gw.connect()
        started = time.monotonic()
        # the client sends nothing at all: the timer, not a next message, closes the socket
        await peer.expect_error("bind_timeout", timeout=3)
        await peer.expect_closed(4008)
        assert time.monotonic() - started < 2.5
        # a socket that bound in time is not affected
        token = await gw.register("alice")
        bound = await gw.bind(token)
        await asyncio.sleep(0.5)
        await bound.send({"type": "WATCH", "usernames": []})
        await bound.expect("WATCHING")


async def test_bind_rate_limit_per_address(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(signaling={"bind_rate_limit": 2}) as gw:
        token = await gw.register("alice")
        for _ in range(2):
            await (await gw.bind(token)).close()
        peer = await gw.connect()
        await peer.send({"type": "BIND", "token": token})
        await peer.expect_error("bind_rate_limited")
        await peer.expect_closed(4029)


async def test_bind_rate_limit_per_account(gateway_factory: GatewayFactory) -> None:
    """Many users behind one address (carrier-grade NAT) bind freely; one account cannot."""
    async with gateway_factory(signaling={"account_bind_rate_limit": 2}) as gw:
        alice = await gw.register("alice")
        bob = await gw.register("bob")
        for _ in range(2):
            await (await gw.bind(alice)).close()
        peer = await gw.connect()
        await peer.send({"type": "BIND", "token": alice})
        await peer.expect_error("bind_rate_limited")
        await peer.expect_closed(4029)
        await (await gw.bind(bob)).close()  # same address, another account: fine


async def test_slow_consumer_is_closed(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(signaling={"send_queue": 8}) as gw:
        token = await gw.register("alice")
        peer = await gw.bind(token)
        hub = gw.app.state.signaling.hub
        (conn,) = [c for c in hub.conns.values() if c.bound]
        for i in range(20):  # faster than any socket drains: the outbox overflows
            hub.push(conn, json.dumps({"type": "PRESENCE", "username": f"u{i:02d}",
                                       "online": True}))  # fmt: skip
        seen = []
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                seen.append(json.loads(await asyncio.wait_for(peer.ws.recv(), 5)))
        assert seen[-1]["type"] == "ERROR" and seen[-1]["code"] == "slow_consumer"
        assert peer.ws.close_code == 1013


async def test_shutdown_closes_with_service_restart(gateway_factory: GatewayFactory) -> None:
    cm = gateway_factory()
    gw = await cm.__aenter__()
    token = await gw.register("alice")
    peer = await gw.bind(token)
    await cm.__aexit__(None, None, None)
    # uvicorn closes every socket with 1012 before the app's shutdown: clients rebind elsewhere
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(peer.ws.recv(), 5)
    assert peer.ws.close_code in (1001, 1012)
