"""Two gateway replicas sharing one database and one REAL Redis (tests/services.py)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.gateway.signaling.conftest import Gateway, GatewayFactory
from tests.services import RedisServer
from wavry.gateway.signaling.fanout import Delivery
from wavry.gateway.signaling.redis_backend import RedisFanout, RedisRateLimiter

Pair = tuple[Gateway, Gateway]


@contextlib.asynccontextmanager
async def _replicas(
    gateway_factory: GatewayFactory, url: str, **signaling: Any
) -> AsyncIterator[Pair]:
    prefix = f"t{secrets.token_hex(6)}"  # pub/sub channels are server-wide: one namespace per test
    sig = {"redis_prefix": prefix, **signaling}
    async with (
        gateway_factory(redis_url=url, signaling=sig) as a,
        gateway_factory(redis_url=url, signaling=sig) as b,
    ):
        assert a.app.state.signaling.fanout.node_id != b.app.state.signaling.fanout.node_id
        yield a, b


@pytest.fixture
async def replicas(gateway_factory: GatewayFactory, fresh_redis_url: str) -> AsyncIterator[Pair]:
    async with _replicas(gateway_factory, fresh_redis_url) as pair:
        yield pair


async def test_host_on_a_client_on_b_offer_answer(replicas: Pair) -> None:
    a, b = replicas
    assert isinstance(a.app.state.signaling.fanout, RedisFanout)
    bob = await a.register("bob")
    carol = await b.register("carol")
    await a.share(bob, "carol")
    client = await b.bind(carol, "client")
    await client.send({"type": "WATCH", "usernames": ["bob"]})
    await client.expect("WATCHING")
    assert (await client.expect("PRESENCE"))["online"] is False
    host = await a.bind(bob, "host")
    assert (await client.expect("PRESENCE"))["online"] is True  # presence crosses replicas

    await client.send({"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": "AAAA"})
    offer = await host.expect("OFFER_RIFT")
    assert offer["target_username"] == "carol"
    await host.send({"type": "ANSWER_RIFT", "target_username": "carol", "ack_b64": "AQID"})
    answer = await client.expect("ANSWER_RIFT")
    assert answer == {"type": "ANSWER_RIFT", "target_username": "bob", "ack_b64": "AQID"}
    cands = [{"addr": "198.51.100.7:40000", "type": "srflx"}]
    await host.send({"type": "CANDIDATE", "target_username": "carol", "candidates": cands})
    assert (await client.expect("CANDIDATE"))["candidates"] == cands

    await host.close()
    assert (await client.expect("PRESENCE"))["online"] is False
    await client.send({"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": "AAAA"})
    await client.expect_error("target_offline")


async def test_newer_bind_on_other_replica_replaces(replicas: Pair) -> None:
    a, b = replicas
    bob = await a.register("bob")
    old = await a.bind(bob, "host")
    new = await b.bind(bob, "host")
    await old.expect_error("session_replaced")
    await old.expect_closed(4000)
    client = await a.bind(bob, "client")
    await client.send({"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": "AAAA"})
    await new.expect("OFFER_RIFT")
    # the replaced socket's close did not unbind its successor
    assert await a.app.state.signaling.fanout.is_bound("host:bob")


async def test_logout_on_a_closes_socket_on_b(replicas: Pair) -> None:
    a, b = replicas
    bob = await a.register("bob")
    host = await b.bind(bob, "host")
    resp = await a.http.post("/auth/logout", headers={"Authorization": f"Bearer {bob}"})
    assert resp.status_code == 200
    await host.expect_error("invalid_token")
    await host.expect_closed(4001)


async def test_bind_rate_limit_is_shared(
    gateway_factory: GatewayFactory, fresh_redis_url: str
) -> None:
    async with _replicas(gateway_factory, fresh_redis_url, bind_rate_limit=2) as (a, b):
        token = await a.register("bob")
        await (await a.bind(token)).close()
        await (await b.bind(token)).close()
        peer = await a.connect()
        await peer.send({"type": "BIND", "token": token})
        await peer.expect_error("bind_rate_limited")


async def test_stale_binding_of_a_dead_replica_is_dropped(replicas: Pair) -> None:
    a, b = replicas
    carol = await a.register("carol")
    fanout: RedisFanout = a.app.state.signaling.fanout
    # a replica that died without unbinding: its key remains, nobody listens on its channel
    await fanout.claim("host:carol", "deadbeefdeadbeef/0123")
    client = await b.bind(carol, "client")
    await client.send({"type": "OFFER_RIFT", "target_username": "carol", "hello_b64": "AAAA"})
    await client.expect_error("target_offline")
    assert not await fanout.is_bound("host:carol")


async def test_rate_limiter_windows_are_shared(fresh_redis_url: str) -> None:
    now = [1_000_000.0]
    one = RedisRateLimiter.from_url(fresh_redis_url, clock=lambda: now[0])
    two = RedisRateLimiter.from_url(fresh_redis_url, clock=lambda: now[0])
    try:
        results = [
            await lim.hit("login:203.0.113.9", limit=3, window_secs=10)
            for lim in (one, two, one, two)
        ]
        assert results == [True, True, True, False]
        assert await one.hit("login:203.0.113.10", limit=3, window_secs=10)  # other key
        now[0] += 10  # next window
        assert await two.hit("login:203.0.113.9", limit=3, window_secs=10)
    finally:
        await one.aclose()
        await two.aclose()


async def test_outage_and_recovery(redis_factory: Callable[[], RedisServer]) -> None:
    server = redis_factory()
    got: list[Delivery] = []

    async def deliver(d: Delivery) -> None:
        got.append(d)

    fanout = RedisFanout.from_url(server.url, prefix="outage", binding_ttl=30, reconnect_max=0.2)
    limiter = RedisRateLimiter.from_url(server.url)
    await fanout.start(deliver)
    try:
        await fanout.claim("host:bob", f"{fanout.node_id}/c1")
        assert await fanout.route("host:bob", {"k": "msg", "m": "1"})
        server.stop()
        # Redis down: the limiter fails open (logins still guarded by DB lockouts)
        assert await limiter.hit("k", limit=1, window_secs=60)
        assert limiter.errors == 1
        await asyncio.sleep(0.3)
        server.start()  # an empty Redis: the replica must put its binding back
        for _ in range(100):
            with contextlib.suppress(Exception):
                if await fanout.route("host:bob", {"k": "msg", "m": "2"}):
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("binding never restored after the Redis restart")
        for _ in range(50):
            if any(d.get("m") == "2" for d in got):
                break
            await asyncio.sleep(0.05)
        assert [d["m"] for d in got if d.get("k") == "msg"][-1] == "2"
        assert fanout.lost_connections >= 1
    finally:
        await fanout.aclose()
        await limiter.aclose()
