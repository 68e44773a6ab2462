"""RIFT over a real relay on 127.0.0.1: handshake and frames through relay FORWARDs, a relay
restart and a client rebinding mid-stream, punch indications, and the relay's added RTT.

Host (``HostEndpoint``) and client (``Connection``) each run on their own ``UdpDriver``; both are
attached to the relay through ``RelayLink``s with leases signed by a test master key (the relay
trusts that key by configuration, as after pinning; ``WAVRY_RELAY_NO_MASTER``).
"""

from __future__ import annotations

import asyncio
import errno
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.relay.conftest import RELAY_ID, Master
from wavry.bench.stream_sim import frame_payload
from wavry.net.relay_link import LinkState, RelayLink
from wavry.net.udp import UdpDriver, open_udp_driver, virtual_relay_address
from wavry.relay.server import RelayServer
from wavry.relay.settings import RelaySettings
from wavry.relay.wire import Role
from wavry.rift import events as ev
from wavry.rift.config import HostOffer, RiftConfig
from wavry.rift.connection import Connection, ConnectionState
from wavry.rift.errors import DropReason
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.proto import rift_pb2

MASTER = Master()
HELLO = rift_pb2.Hello(
    client_name="relay-e2e",
    supported_codecs=[rift_pb2.H264],
    max_resolution=rift_pb2.Resolution(width=1280, height=720),
    max_fps=60,
)
FRAME = 3_000
#: datagrams that are not RIFT: if one reached a core it would be dropped for one of these
NOT_RIFT = (DropReason.BAD_MAGIC, DropReason.TOO_SHORT, DropReason.BAD_VERSION)


def relay_settings(port: int, fastpath: str) -> RelaySettings:
    return RelaySettings(
        listen=f"127.0.0.1:{port}",
        health_listen="127.0.0.1:0",
        no_master=True,
        master_public_key=f"{MASTER.kid}:{MASTER.public_key.hex()}",
        relay_id=RELAY_ID,
        fastpath=fastpath,
    )


class RelayProc:
    """An in-process ``RelayServer`` that can be restarted on the same port."""

    def __init__(self, fastpath: str) -> None:
        self.fastpath = fastpath
        self.server: RelayServer | None = None
        self.port = 0

    async def start(self) -> None:
        for _ in range(100):  # the old socket may take a moment to go away
            server = RelayServer(relay_settings(self.port, self.fastpath))
            try:
                await server.start()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                await server.close()
                await asyncio.sleep(0.02)
                continue
            self.server = server
            self.port = server.udp_address[1]
            return
        raise AssertionError("could not rebind the relay port")

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    @property
    def addr(self) -> tuple[str, int]:
        return "127.0.0.1", self.port


@pytest.fixture(params=["off", "auto"], ids=["python", "fastpath-auto"])
async def relay(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: Any) -> Any:
    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path))
    proc = RelayProc(request.param)
    await proc.start()
    yield proc
    await proc.stop()


class Rig:
    """Host and relayed client; frames sent by the host and collected by the client."""

    def __init__(self, relay: RelayProc, config: RiftConfig, sessions: int = 1) -> None:
        self.sessions = sessions
        self.relay = relay
        self.config = config
        self.sid = uuid.uuid4().bytes
        self.loop = asyncio.get_running_loop()
        self.host_id = Identity.generate()
        self.received: list[ev.VideoFrameReceived] = []
        self.next_frame = 0
        self.activity: Callable[[], None] | None = None

    def link(self, role: Role) -> RelayLink:
        token = MASTER.lease(self.sid, role.claim, now=time.time())
        return RelayLink(self.relay.addr, self.sid, role, token, self.loop.time())

    async def start(self) -> None:
        t0 = self.loop.time()
        self.host_core = HostEndpoint(
            identity=self.host_id,
            offer=HostOffer(),
            config=self.config,
            max_active_sessions=self.sessions,
        )
        self.host_link = self.link(Role.SERVER)
        self.host = await open_udp_driver(
            lambda: self.host_core, local_addr=("127.0.0.1", 0), relay_links=[self.host_link]
        )
        self.client_link = self.link(Role.CLIENT)
        vaddr = virtual_relay_address(self.client_link)
        self.client_core = Connection.client(
            identity=Identity.generate(),
            peer_addr=vaddr,
            hello=HELLO,
            now=self.loop.time(),
            config=self.config,
            expected_host_id=self.host_id.wavry_id,
        )
        self.client = await self.client_driver()
        assert self.client.relay_link(vaddr) is self.client_link
        async with asyncio.timeout(10):
            while not self.established():
                await asyncio.sleep(0.01)
                self.drain()
        self.conn = next(iter(self.host_core.connections.values()))
        self.connect_time = self.loop.time() - t0
        # The host sees the client at the host link's virtual address, never the relay's.
        assert self.conn.peer_addr == virtual_relay_address(self.host_link)

    async def client_driver(self) -> UdpDriver:
        return await open_udp_driver(
            lambda: self.client_core,
            local_addr=("127.0.0.1", 0),
            relay_links=[self.client_link],
            on_activity=self.activity,
        )

    def established(self) -> bool:
        return self.client_core.state is ConnectionState.ESTABLISHED and any(
            c.state is ConnectionState.ESTABLISHED for c in self.host_core.connections.values()
        )

    def drain(self) -> None:
        while (e := self.client_core.next_event()) is not None:
            if isinstance(e, ev.VideoFrameReceived):
                self.received.append(e)
        while self.host_core.next_event() is not None:
            pass

    async def stream(self, seconds: float, fps: int = 60) -> int:
        """Send frames for ``seconds``; returns how many the client got in that time."""
        before = len(self.received)
        end = self.loop.time() + seconds
        while self.loop.time() < end:
            # Like an encoder following the target bitrate: after an outage DELTA drops to its
            # floor, and a test that kept queueing 60 fps would only measure the backlog.
            if self.conn.send_queue_length < 32:
                i = self.next_frame
                self.next_frame += 1
                self.conn.send_video_frame(
                    frame_payload(i, FRAME), keyframe=i == 0, timestamp_us=i, now=self.loop.time()
                )
                self.host.flush()
            await asyncio.sleep(1 / fps)
            self.drain()
        return len(self.received) - before

    async def until_frames(self, timeout: float) -> float:
        """Stream until a new frame arrives; returns how long it took."""
        start = self.loop.time()
        n = len(self.received)
        while len(self.received) == n:
            assert self.loop.time() - start < timeout, "frames did not resume"
            await self.stream(0.02)
        return self.loop.time() - start

    def check_frames(self) -> None:
        assert self.received
        for f in self.received:
            assert f.data == frame_payload(f.frame_id, FRAME)
        ids = [f.frame_id for f in self.received]
        assert ids == sorted(ids)

    def not_rift_drops(self) -> int:
        drops = self.host_core.drops + self.client_core.drops + self.conn.drops
        return sum(drops[r] for r in NOT_RIFT)

    def close(self) -> None:
        self.client_core.close(self.loop.time())
        self.client.close()
        self.host.close()


@pytest.fixture
async def rig(relay: RelayProc) -> AsyncIterator[Rig]:
    r = Rig(relay, RiftConfig())
    await r.start()
    yield r
    r.close()


async def test_frames_flow_through_the_relay(rig: Rig, relay: RelayProc) -> None:
    got = await rig.stream(1.0)
    ms = rig.connect_time * 1000
    print(f"\nrelayed: both links presented and RIFT established in {ms:.0f} ms")
    assert rig.connect_time < 1.0  # no RIFT retransmission: MSG1 waited for the ACK
    assert got >= 45
    rig.check_frames()
    assert rig.host_link.state is LinkState.BOUND and rig.client_link.state is LinkState.BOUND
    assert rig.client_link.forwarded_in >= got
    assert rig.host_link.forwarded_out > 0 and rig.client_link.forwarded_out > 0
    assert rig.client_link.last_rtt is not None and rig.client_link.last_rtt < 0.1
    assert relay.server is not None
    counters = relay.server.core.counters
    relay.server.core.fold_fastpath()
    assert counters.packets_forwarded >= got
    assert counters.lease_ack_packets >= 2
    assert rig.not_rift_drops() == 0


async def test_relay_restart_mid_stream_recovers(rig: Rig, relay: RelayProc) -> None:
    assert await rig.stream(0.5) >= 20
    conn_before, client_state = rig.conn, rig.client_core.state
    await relay.stop()
    outage = await rig.stream(0.3)  # frames sent into the void while the relay is down
    await relay.start()
    restarted = rig.loop.time()
    resumed = await rig.until_frames(timeout=3.0)
    assert resumed < 2.0, f"frames resumed {resumed:.2f} s after the restart"
    after = await rig.stream(1.0)
    assert after >= 10, (
        after,
        rig.conn.target_bitrate_kbps,
        rig.conn.send_queue_length,
        rig.client_link.stats(),
        rig.host_link.stats(),
        rig.client_core.stats(),
    )
    assert outage <= 3  # (a few frames in flight when the relay stopped)
    # The RIFT session did not close or restart: same connection, same state.
    assert rig.client_core.state is client_state is ConnectionState.ESTABLISHED
    assert next(iter(rig.host_core.connections.values())) is conn_before
    assert rig.client_link.rebinds >= 1 and rig.host_link.rebinds >= 1
    assert rig.client_link.state is LinkState.BOUND
    assert relay.server is not None and relay.server.core.session_count == 1
    rig.check_frames()
    assert rig.not_rift_drops() == 0
    print(f"\nrelay restart: frames resumed {resumed * 1000:.0f} ms after the relay came back")
    assert rig.loop.time() - restarted < 5


async def test_client_rebinding_to_a_new_port(rig: Rig, relay: RelayProc) -> None:
    assert await rig.stream(0.5) >= 20
    old_port = rig.client.local_address[1]
    rig.client.close()
    await rig.client.closed.wait()
    rig.client = await rig.client_driver()  # same Connection, same link, new socket
    assert rig.client.local_address[1] != old_port
    resumed = await rig.until_frames(timeout=2.0)
    assert resumed < 1.0
    assert await rig.stream(0.5) >= 20
    assert relay.server is not None
    assert relay.server.core.counters.nat_rebind_events == 1
    [session] = relay.server.core.sessions()
    assert session.client is not None and session.client[1] == rig.client.local_address
    assert rig.client_core.state is ConnectionState.ESTABLISHED
    rig.check_frames()
    assert rig.not_rift_drops() == 0


async def test_punch_indications_and_relay_control_never_reach_the_core(rig: Rig) -> None:
    await rig.stream(0.2)
    drops = rig.not_rift_drops()
    acks = rig.client_link.acks
    packets_in = rig.host.datagrams_in
    rig.client.punch([rig.host.local_address], count=10, interval=0.01)
    assert rig.client.punching
    # Re-presenting makes the relay answer with more LEASE_ACKs (control, not RIFT).
    rig.client_link.network_changed(rig.loop.time())
    rig.client.flush()
    await rig.stream(0.3)
    assert not rig.client.punching
    assert rig.client.punch_out == 10
    assert rig.host.punch_in == 10
    assert list(rig.host.punch_from) == [rig.client.local_address] * 8  # bounded: last 8
    assert rig.client_link.acks > acks
    assert rig.not_rift_drops() == drops == 0
    # Punches were counted, not delivered: the host core got only relayed RIFT traffic.
    assert rig.host.datagrams_in - packets_in <= rig.host_link.forwarded_in
    # stop_punching ends a burst early.
    rig.client.punch([rig.host.local_address], count=100, interval=0.01)
    await asyncio.sleep(0.035)
    rig.client.stop_punching()
    sent = rig.client.punch_out
    await asyncio.sleep(0.05)
    assert rig.client.punch_out == sent < 10 + 10


async def test_relay_added_rtt_direct_vs_relayed(relay: RelayProc) -> None:
    """One host serves a direct and a relayed client at once; RIFT ping RTT samples of both."""
    config = RiftConfig(ping_interval=0.01)
    rig = Rig(relay, config, sessions=2)
    samples: dict[str, list[float]] = {"direct": [], "relay": []}
    last: dict[str, float | None] = {"direct": None, "relay": None}
    cores: dict[str, Connection] = {}

    def sample() -> None:
        # Raw samples from the EWMA (srtt' = 7/8 srtt + 1/8 sample), read after each datagram.
        for name, core in cores.items():
            srtt, prev = core.srtt, last[name]
            if srtt is not None and srtt != prev:
                samples[name].append(srtt if prev is None else (srtt - 0.875 * prev) / 0.125)
                last[name] = srtt

    rig.activity = sample
    await rig.start()
    direct_core = Connection.client(
        identity=Identity.generate(),
        peer_addr=rig.host.local_address,
        hello=HELLO,
        now=rig.loop.time(),
        config=config,
        expected_host_id=rig.host_id.wavry_id,
    )
    direct = await open_udp_driver(
        lambda: direct_core, local_addr=("127.0.0.1", 0), on_activity=sample
    )
    cores.update(direct=direct_core, relay=rig.client_core)
    try:
        async with asyncio.timeout(5):
            while direct_core.state is not ConnectionState.ESTABLISHED:
                await asyncio.sleep(0.01)
        await asyncio.sleep(4.0)
    finally:
        direct_core.close(rig.loop.time())
        direct.close()
        rig.close()
    native = relay.server is not None and relay.server.fastpath_enabled
    report = {}
    for name, xs in samples.items():
        assert len(xs) >= 200, (name, len(xs))
        qs = statistics.quantiles(xs, n=100)
        report[name] = (statistics.median(xs) * 1000, qs[98] * 1000)
    print(
        f"\nRIFT ping RTT on loopback (relay {'native' if native else 'python'} path):"
        f" direct p50 {report['direct'][0]:.3f} ms"
        f" p99 {report['direct'][1]:.3f} ms; via relay p50 {report['relay'][0]:.3f} ms"
        f" p99 {report['relay'][1]:.3f} ms"
    )
    # The relay adds one loopback hop and its processing: well under 5 ms at the median.
    assert report["relay"][0] < report["direct"][0] + 5.0


async def test_idle_session_does_not_re_present(rig: Rig) -> None:
    """No media: only RIFT pings (0.5 s each way) cross the relay; silence_s (0.6 s) is longer
    than any gap between them, so the links never re-present spuriously."""
    presents = rig.client_link.presents_sent + rig.host_link.presents_sent
    await asyncio.sleep(2.0)
    assert rig.client_link.rebinds == rig.host_link.rebinds == 0
    assert rig.client_link.presents_sent + rig.host_link.presents_sent == presents
    assert rig.client_core.state is ConnectionState.ESTABLISHED


class Scripted:
    """A minimal sans-IO core: sends what the test queues, records what it receives."""

    def __init__(self) -> None:
        self.out: list[tuple[bytes, tuple[str, int]]] = []
        self.got: list[tuple[bytes, tuple[str, int]]] = []

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self.got.append((data, addr))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        out, self.out = self.out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass


async def test_one_socket_many_relayed_sessions_and_detach(relay: RelayProc) -> None:
    """A host serves two relayed peers through the same relay (two session ids) on one socket;
    oversize datagrams and a detached path are refused without touching the network."""
    loop = asyncio.get_running_loop()
    sids = [uuid.uuid4().bytes for _ in range(2)]

    def link(sid: bytes, role: Role) -> RelayLink:
        token = MASTER.lease(sid, role.claim, now=time.time())
        return RelayLink(relay.addr, sid, role, token, loop.time())

    host_core, peer_cores = Scripted(), [Scripted(), Scripted()]
    host_links = [link(s, Role.SERVER) for s in sids]
    host = await open_udp_driver(
        lambda: host_core, local_addr=("127.0.0.1", 0), relay_links=host_links
    )
    peers = []
    for sid, core in zip(sids, peer_cores, strict=True):

        def factory(c: Scripted = core) -> Scripted:
            return c

        peers.append(
            await open_udp_driver(
                factory, local_addr=("127.0.0.1", 0), relay_links=[link(sid, Role.CLIENT)]
            )
        )
    vaddrs = list(host.relay_links)
    assert len(vaddrs) == 2 and vaddrs[0] != vaddrs[1]
    try:
        async with asyncio.timeout(5):
            while not all(
                lk.state is LinkState.BOUND for d in (host, *peers) for lk in d.relay_links.values()
            ):
                await asyncio.sleep(0.01)
        for i, (peer, core) in enumerate(zip(peers, peer_cores, strict=True)):
            [pv] = peer.relay_links
            core.out.append((b"to-host-%d" % i + bytes(8), pv))
            peer.flush()
            host_core.out.append((b"to-peer-%d" % i + bytes(8), vaddrs[i]))
        host_core.out.append((bytes(1481), vaddrs[0]))  # one byte over a FORWARD
        host.flush()
        async with asyncio.timeout(5):
            while len(host_core.got) < 2 or not all(c.got for c in peer_cores):
                await asyncio.sleep(0.01)
        # Each peer's datagram arrives from that session's virtual address, and back.
        assert sorted(host_core.got) == sorted(
            (b"to-host-%d" % i + bytes(8), vaddrs[i]) for i in range(2)
        )
        for i, core in enumerate(peer_cores):
            assert [d for d, _ in core.got] == [b"to-peer-%d" % i + bytes(8)]
        assert host.relay_send_dropped == 1
        assert host_links[0].dropped_out == 1
        # Detached: the path is gone; the core's datagrams to it are dropped, not resolved.
        assert host.detach_relay(vaddrs[1]) is host_links[1]
        assert host.detach_relay(vaddrs[1]) is None
        errors = host.send_errors
        host_core.out.append((b"late" + bytes(8), vaddrs[1]))
        host.flush()
        assert host.relay_send_dropped == 2 and host.send_errors == errors
        # The relay still forwards the peer's datagrams to us: counted, not given to the core.
        [pv] = peers[1].relay_links
        # (the relay reads the first 8 bytes as a sequence number: larger than "to-host-")
        peer_cores[1].out.append((b"~orphan~" + bytes(8), pv))
        peers[1].flush()
        async with asyncio.timeout(5):
            while host.relay_unknown == 0:
                await asyncio.sleep(0.01)
        assert len(host_core.got) == 2
    finally:
        for d in (host, *peers):
            d.close()
