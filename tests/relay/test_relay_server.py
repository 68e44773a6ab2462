"""Black-box relay tests over real UDP sockets on 127.0.0.1 (and its health HTTP port)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from tests.relay.conftest import RELAY_ID, Master, Sids, wavry_id
from wavry.bind_policy import BindPolicyError
from wavry.relay import fastpath, wire
from wavry.relay.core import OUTCOMES
from wavry.relay.server import RelayServer
from wavry.relay.settings import RelaySettings
from wavry.relay.wire import MessageType, RejectCode, Role
from wavry.rift.header import TransportHeader

MASTER = Master()
TIMEOUT = 5.0


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Selector and uvloop transports do not share the DatagramTransport base class.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.inbox.put_nowait(data)

    @property
    def addr(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    async def recv(self) -> bytes:
        return await asyncio.wait_for(self.inbox.get(), TIMEOUT)


class Rig:
    def __init__(self, server: RelayServer) -> None:
        self.server = server
        self.core = server.core
        self.sids = Sids()
        self.peers: list[Peer] = []

    async def peer(self) -> Peer:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
        self.peers.append(proto)
        return proto

    def send(self, peer: Peer, data: bytes) -> None:
        assert peer.transport is not None
        peer.transport.sendto(data, self.server.udp_address)

    async def settle(self, rx: int | None = None) -> None:
        """Wait (bounded) until the relay has processed ``rx`` datagrams in total."""
        c = self.core.counters
        for _ in range(5000):
            if c.packets_rx >= (rx or 0) and not self.server.queue_depth:
                break
            await asyncio.sleep(0.001)
        assert c.packets_rx >= (rx or 0)
        assert c.outcome_total() == c.packets_rx

    async def present(self, peer: Peer, sid: bytes, role: Role, **kw: Any) -> bytes:
        token = MASTER.lease(sid, role.claim, now=time.time(), **kw)
        self.send(peer, wire.encode_lease_present(sid, role, token))
        return await peer.recv()

    async def pair(self) -> tuple[bytes, Peer, Peer]:
        sid = self.sids.new()
        a, b = await self.peer(), await self.peer()
        assert (await self.present(a, sid, Role.CLIENT))[2] == MessageType.LEASE_ACK
        assert (await self.present(b, sid, Role.SERVER))[2] == MessageType.LEASE_ACK
        return sid, a, b

    def close(self) -> None:
        for p in self.peers:
            assert p.transport is not None
            p.transport.close()


def settings(**kw: Any) -> RelaySettings:
    base: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "health_listen": "127.0.0.1:0",
        "no_master": True,
        "master_public_key": f"{MASTER.kid}:{MASTER.public_key.hex()}",
        "relay_id": RELAY_ID,
    }
    base.update(kw)
    return RelaySettings(**base)


@pytest.fixture(params=["off", "on"], ids=["python", "native"])
async def make_rig(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Any]]:
    """Every black-box rule runs on the pure-Python path and on the native fast path."""
    if request.param == "on" and not fastpath.available():
        pytest.skip(f"native relay fast path: {fastpath.unavailable_reason()}")
    rigs: list[Rig] = []

    async def make(**kw: Any) -> Rig:
        server = RelayServer(settings(fastpath=request.param, **kw))
        assert server.settings.fastpath == request.param
        await server.start()
        assert server.fastpath_enabled is (request.param == "on")
        assert "wavry_relay_fastpath_enabled{" in server.prometheus()
        rig = Rig(server)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()
        await rig.server.close()


def rift(pid: int, size: int = 1200, alias: int = 5) -> bytes:
    head = TransportHeader(alias, pid).encode()
    return head + bytes((pid + i) & 0xFF for i in range(size - 20 - len(head)))


def reject_code(data: bytes) -> RejectCode:
    return wire.parse_lease_reject(data).code


async def test_valid_lease_forwards_both_ways_byte_identical(make_rig: Any) -> None:
    r: Rig = await make_rig()
    sid, a, b = await r.pair()
    for pid in range(1, 11):
        up = wire.encode_forward(sid, rift(pid))
        assert len(up) == 1200
        r.send(a, up)
        assert await b.recv() == up
        down = wire.encode_forward(sid, rift(pid, alias=9))
        r.send(b, down)
        assert await a.recv() == down
    assert r.core.counters.packets_forwarded == 20


async def test_reject_codes_over_udp(make_rig: Any) -> None:
    r: Rig = await make_rig(banned_ids=wavry_id(7))
    p = await r.peer()
    sid = r.sids.new()
    now = time.time()
    expired = MASTER.lease(sid, "client", now=now - 2000)
    r.send(p, wire.encode_lease_present(sid, Role.CLIENT, expired))
    assert reject_code(await p.recv()) is RejectCode.EXPIRED
    foreign = Master(seed=b"\x09" * 32).lease(sid, "client", now=now)
    r.send(p, wire.encode_lease_present(sid, Role.CLIENT, foreign))
    assert reject_code(await p.recv()) is RejectCode.INVALID_SIGNATURE
    forged = MASTER.lease(sid, "client", now=now)
    forged = forged[:-6] + ("AAAAAA" if not forged.endswith("AAAAAA") else "BBBBBB")
    r.send(p, wire.encode_lease_present(sid, Role.CLIENT, forged))
    assert reject_code(await p.recv()) is RejectCode.INVALID_SIGNATURE
    wrong_role = MASTER.lease(sid, "server", now=now)
    r.send(p, wire.encode_lease_present(sid, Role.CLIENT, wrong_role))
    assert reject_code(await p.recv()) is RejectCode.INVALID_SIGNATURE
    assert reject_code(await r.present(p, sid, Role.CLIENT, rid="other")) is RejectCode.WRONG_RELAY
    banned = await r.present(p, sid, Role.CLIENT, sub=wavry_id(7))
    assert reject_code(banned) is RejectCode.BANNED
    await r.settle()
    c = r.core.counters
    assert (c.expired_lease_rejects, c.auth_reject_packets, c.wrong_relay_rejects) == (1, 3, 1)
    assert c.banned_rejects == 1 and r.core.session_count == 0


async def test_session_full_and_load_shed(make_rig: Any) -> None:
    r: Rig = await make_rig(max_sessions=2, load_shed_threshold_pct=50)
    await r.pair()
    assert not r.server.ready
    p = await r.peer()
    assert reject_code(await r.present(p, r.sids.new(), Role.CLIENT)) is RejectCode.SESSION_FULL
    assert r.core.counters.overload_shed_packets == 1
    full: Rig = await make_rig(max_sessions=1, load_shed_threshold_pct=100)
    await full.pair()
    q = await full.peer()
    rej = await full.present(q, full.sids.new(), Role.CLIENT)
    assert reject_code(rej) is RejectCode.SESSION_FULL
    assert full.core.counters.session_full_rejects == 1


async def test_rate_limits(make_rig: Any) -> None:
    r: Rig = await make_rig(ip_rate_limit_pps=5, identity_rate_limit_pps=3)
    sid = r.sids.new()
    p = await r.peer()
    codes = []
    for _ in range(4):  # one identity, several presents within a second
        out = await r.present(p, sid, Role.CLIENT)
        codes.append(out[2] if out[2] == MessageType.LEASE_ACK else reject_code(out))
    # (a second boundary in between can only let more through; never fewer rejections)
    assert codes[0] == MessageType.LEASE_ACK
    assert RejectCode.RATE_LIMITED in codes or r.core.counters.packets_rx == 4
    stranger = await r.peer()
    for pid in range(1, 31):
        r.send(stranger, wire.encode_forward(sid, rift(pid, size=100)))
    await r.settle(4 + 30)
    c = r.core.counters
    assert c.rate_limited_packets >= 1
    assert c.unknown_peer_packets + c.rate_limited_packets == 30


async def test_queue_overflow_counts_backpressure(make_rig: Any) -> None:
    r: Rig = await make_rig(packet_queue_capacity=64)
    sid, a, b = await r.pair()
    r.server.pause_processing()
    for pid in range(1, 75):
        r.send(a, wire.encode_forward(sid, rift(pid, size=200)))
    for _ in range(5000):
        if r.core.counters.backpressure_dropped_packets >= 10:
            break
        await asyncio.sleep(0.001)
    assert r.server.queue_depth == 64
    assert r.core.counters.backpressure_dropped_packets == 10
    r.server.resume_processing()
    await r.settle(2 + 74)
    assert r.core.counters.packets_forwarded == 64
    got = [await b.recv() for _ in range(64)]
    assert got[0] == wire.encode_forward(sid, rift(1, size=200))


async def test_bandwidth_hard_cap(make_rig: Any) -> None:
    r: Rig = await make_rig()
    sid = r.sids.new()
    a, b = await r.peer(), await r.peer()
    await r.present(a, sid, Role.CLIENT, slimit=1000, hlimit=1000)  # 125 kB per second
    await r.present(b, sid, Role.SERVER)
    for pid in range(1, 401):
        r.send(a, wire.encode_forward(sid, rift(pid)))
        if pid % 50 == 0:
            await r.settle(2 + pid)
    await r.settle(402)
    c = r.core.counters
    assert c.bandwidth_dropped_packets >= 1
    assert c.packets_forwarded + c.bandwidth_dropped_packets == 400
    assert c.soft_limit_exceeded_packets == 0  # soft == hard here


async def test_replay_dropped(make_rig: Any) -> None:
    r: Rig = await make_rig()
    sid, a, b = await r.pair()
    pkt = wire.encode_forward(sid, rift(42))
    r.send(a, pkt)
    assert await b.recv() == pkt
    r.send(a, pkt)
    r.send(a, wire.encode_forward(sid, rift(43)))
    assert await b.recv() == wire.encode_forward(sid, rift(43))
    await r.settle(5)
    assert r.core.counters.replay_dropped_packets == 1


async def test_nat_rebind_by_representing_the_lease(make_rig: Any) -> None:
    r: Rig = await make_rig()
    sid, a, b = await r.pair()
    moved = await r.peer()
    r.send(moved, wire.encode_forward(sid, rift(1)))  # unknown address: dropped, no rebind
    await r.settle(3)
    assert r.core.counters.unknown_peer_packets == 1
    assert (await r.present(moved, sid, Role.CLIENT))[2] == MessageType.LEASE_ACK
    assert r.core.counters.nat_rebind_events == 1
    r.send(moved, wire.encode_forward(sid, rift(2)))
    assert await b.recv() == wire.encode_forward(sid, rift(2))
    r.send(b, wire.encode_forward(sid, rift(2, alias=9)))
    assert await moved.recv() == wire.encode_forward(sid, rift(2, alias=9))
    r.send(a, wire.encode_forward(sid, rift(3)))  # the old address no longer forwards
    await r.settle(7)
    assert r.core.counters.unknown_peer_packets == 2
    assert a.inbox.empty()


async def test_idle_cleanup(make_rig: Any) -> None:
    # 1 s, not less: on a loaded CI machine both LEASE_PRESENTs of pair() can be more than a
    # short timeout apart, and the half-bound session then idles out before the second arrives.
    r: Rig = await make_rig(idle_timeout=1.0, cleanup_interval_secs=0.05)
    sid, a, b = await r.pair()
    for _ in range(1000):
        if r.core.session_count == 0:
            break
        await asyncio.sleep(0.01)
    assert r.core.session_count == 0
    assert r.core.counters.cleanup_idle_sessions == 1
    r.send(a, wire.encode_forward(sid, rift(1)))
    await r.settle(3)
    assert r.core.counters.session_not_found_packets == 1


async def http_get(addr: tuple[str, int], path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(*addr)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_health_ready_metrics(make_rig: Any) -> None:
    import json

    r: Rig = await make_rig()
    sid, a, b = await r.pair()
    r.send(a, wire.encode_forward(sid, rift(1)))
    await b.recv()
    r.send(a, b"garbage")
    await r.settle(4)
    status, body = await http_get(r.server.health_address, "/health")
    doc = json.loads(body)
    assert status == 200 and doc["relay_id"] == RELAY_ID and doc["ready"] is True
    assert doc["active_sessions"] == 1 and doc["metrics"]["packets_forwarded"] == 1
    status, body = await http_get(r.server.health_address, "/ready")
    assert status == 200 and json.loads(body)["ready"] is True
    status, body = await http_get(r.server.health_address, "/metrics")
    text = body.decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name.split("{")[0].removeprefix("wavry_relay_")] = int(value)
    assert f'relay_id="{RELAY_ID}"' in text
    assert values["packets_rx"] == 4 == sum(values[n] for n in OUTCOMES)
    assert values["invalid_packets"] == 1 and values["active_sessions"] == 1
    for name in (
        "bytes_rx",
        "bytes_forwarded",
        "lease_present_packets",
        "lease_renew_packets",
        "dropped_packets",
        "cleanup_expired_sessions",
        "cleanup_idle_sessions",
        "nat_rebind_events",
        "uptime_seconds",
    ):
        assert name in values
    assert (await http_get(r.server.health_address, "/nope"))[0] == 404


async def test_bind_policy_refuses_public_without_opt_in() -> None:
    server = RelayServer(settings(listen="0.0.0.0:0"))
    with pytest.raises(BindPolicyError, match="WAVRY_RELAY_ALLOW_PUBLIC_BIND"):
        await server.start()
    await server.close()
    server = RelayServer(settings(health_listen="0.0.0.0:0"))
    with pytest.raises(BindPolicyError, match="WAVRY_RELAY_ALLOW_PUBLIC_BIND"):
        await server.start()
    await server.close()


async def test_public_bind_with_insecure_settings_is_refused() -> None:
    s = settings(listen="0.0.0.0:0", allow_public_bind=True, no_master=False)
    server = RelayServer(s)
    with pytest.raises(ValueError, match="WAVRY_RELAY_MASTER_TOKEN"):
        server.check_policy()
