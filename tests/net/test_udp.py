"""The asyncio UDP driver with real sockets on loopback: handshake, frames, impairment, DSCP."""

from __future__ import annotations

import asyncio
import random
import socket

import uvloop

from wavry.bench.stream_sim import frame_payload
from wavry.net.impairment import ImpairmentConfig, ImpairmentLink
from wavry.net.udp import DSCP_EF, UdpDriver, configure_socket, open_udp_driver
from wavry.rift import events as ev
from wavry.rift.config import HostOffer, RiftConfig
from wavry.rift.connection import Connection, ConnectionState
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.proto import rift_pb2

HELLO = rift_pb2.Hello(
    client_name="udp-test",
    supported_codecs=[rift_pb2.H264],
    max_resolution=rift_pb2.Resolution(width=1280, height=720),
    max_fps=60,
)


async def _stream(
    frames: int, *, impair: ImpairmentConfig | None = None, size: int = 12_000
) -> tuple[list[ev.VideoFrameReceived], Connection, HostEndpoint]:
    loop = asyncio.get_running_loop()
    host_identity = Identity.generate()
    host_core = HostEndpoint(identity=host_identity, offer=HostOffer(), config=RiftConfig())
    link = None if impair is None else ImpairmentLink(impair, random.Random(1))
    host = await open_udp_driver(lambda: host_core, local_addr=("127.0.0.1", 0), impairment=link)
    client_core = Connection.client(
        identity=Identity.generate(),
        peer_addr=host.local_address,
        hello=HELLO,
        now=loop.time(),
        expected_host_id=host_identity.wavry_id,
    )
    link2 = None if impair is None else ImpairmentLink(impair, random.Random(2))
    client = await open_udp_driver(
        lambda: client_core, local_addr=("127.0.0.1", 0), tos=DSCP_EF, impairment=link2
    )
    received: list[ev.VideoFrameReceived] = []
    try:
        async with asyncio.timeout(20):
            while client_core.state is not ConnectionState.ESTABLISHED:
                await client.wait_activity(0.1)
            while not any(
                c.state is ConnectionState.ESTABLISHED for c in host_core.connections.values()
            ):
                await host.wait_activity(0.1)
            conn = next(iter(host_core.connections.values()))
            for i in range(frames):
                conn.send_video_frame(
                    frame_payload(i, size), keyframe=i == 0, timestamp_us=i, now=loop.time()
                )
                host.flush()
                await asyncio.sleep(1 / 60)
                while (e := client_core.next_event()) is not None:
                    if isinstance(e, ev.VideoFrameReceived):
                        received.append(e)
            deadline = loop.time() + 1.0
            while loop.time() < deadline and (not received or received[-1].frame_id < frames - 1):
                await client.wait_activity(0.05)
                while (e := client_core.next_event()) is not None:
                    if isinstance(e, ev.VideoFrameReceived):
                        received.append(e)
    finally:
        client_core.close(loop.time())
        client.close()
        host.close()
    return received, client_core, host_core


async def test_frames_cross_real_udp_sockets_intact() -> None:
    received, client, _host = await _stream(60)
    assert [f.frame_id for f in received] == list(range(60))
    assert all(f.data == frame_payload(f.frame_id, 12_000) for f in received)
    assert client.srtt is not None and client.srtt < 0.1


async def test_impaired_link_in_process_still_delivers() -> None:
    impair = ImpairmentConfig(loss=0.03, delay=0.005, jitter=0.002)
    received, client, _host = await _stream(90, impair=impair)
    ids = [f.frame_id for f in received]
    assert ids == sorted(ids)
    assert len(ids) >= 85
    assert client.stats().fec_recovered + client.stats().packets_received > 0


def test_driver_runs_on_uvloop() -> None:
    async def main() -> int:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        received, _, _ = await _stream(20)
        return len(received)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) == 20


def test_dscp_ef_marking_is_applied() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert configure_socket(sock, tos=DSCP_EF) == DSCP_EF
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0xB8
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 212_992


async def test_garbage_on_the_socket_is_dropped_not_fatal() -> None:
    host_core = HostEndpoint(identity=Identity.generate())
    host: UdpDriver = await open_udp_driver(lambda: host_core, local_addr=("127.0.0.1", 0))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for n in range(200):
                s.sendto(random.Random(n).randbytes(n * 7 % 1500), host.local_address)
        for _ in range(20):
            await asyncio.sleep(0.01)
            if host.datagrams_in >= 200:
                break
        assert host.datagrams_in == 200
        assert sum(host_core.drops.values()) == 200
        assert not host_core.connections
    finally:
        host.close()
