"""A host and a client streaming synthetic video through the simulated network, in virtual time.

This is the real RIFT stack end to end (handshake, AEAD, FEC, NACK, reassembly, jitter buffer,
DELTA) with only the sockets replaced by ``SimNetwork`` links, so a 30 s session runs in seconds
and the same seed gives the same result. Used by the tests and by ``wavry bench rift``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from wavry.net.impairment import ImpairmentConfig, ImpairmentLink
from wavry.net.simnet import SimNetwork
from wavry.rift import events as ev
from wavry.rift.config import HostOffer, RiftConfig
from wavry.rift.connection import Connection, ConnectionState
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.proto import rift_pb2

__all__ = ["StreamResult", "StreamScenario", "frame_payload", "run_stream"]

HOST_ADDR = ("198.51.100.1", 4444)
CLIENT_ADDR = ("203.0.113.7", 50000)


def frame_payload(frame_id: int, size: int) -> bytes:
    """Deterministic, frame-specific content so the receiver can verify every byte."""
    block = hashlib.blake2b(frame_id.to_bytes(8, "big"), digest_size=64).digest()
    reps = size // 64 + 1
    return (frame_id.to_bytes(8, "big") + block * reps)[:size]


@dataclass(frozen=True, slots=True)
class StreamScenario:
    duration: float = 10.0
    fps: int = 60
    bitrate_kbps: int = 8_000
    keyframe_interval: float = 2.0
    keyframe_factor: float = 2.0
    downlink: ImpairmentConfig = field(default_factory=ImpairmentConfig)  # host -> client
    uplink: ImpairmentConfig = field(default_factory=ImpairmentConfig)  # client -> host
    config: RiftConfig = field(default_factory=RiftConfig)
    seed: int = 1
    #: encoder follows DELTA's target bitrate and fps (otherwise constant bitrate)
    adaptive: bool = True
    #: ceiling DELTA may probe up to (default: the initial bitrate)
    max_bitrate_kbps: int | None = None
    #: random datagrams per second thrown at each side (fuzzing a live session)
    garbage_per_second: float = 0.0
    #: time at which the client's NAT mapping changes (new source port)
    rebind_client_at: float | None = None


@dataclass(slots=True)
class StreamResult:
    established_at: float | None = None
    frames_sent: int = 0
    frame_send_times: dict[int, float] = field(default_factory=dict)
    received: list[tuple[int, float]] = field(default_factory=list)  # (frame_id, released_at)
    corrupt_frames: int = 0
    lost: list[int] = field(default_factory=list)
    keyframe_requests: int = 0
    bitrate_changes: list[tuple[float, int]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    client_stats: dict[str, object] = field(default_factory=dict)
    host_stats: dict[str, object] = field(default_factory=dict)
    garbage_sent: int = 0

    @property
    def received_ids(self) -> list[int]:
        return [fid for fid, _ in self.received]

    @property
    def in_order(self) -> bool:
        ids = self.received_ids
        return all(a < b for a, b in zip(ids, ids[1:], strict=False))

    def complete_fraction(self, after: float = 0.0) -> float:
        """Fraction of frames sent after ``after`` (s) that arrived complete and intact."""
        eligible = {fid for fid, t in self.frame_send_times.items() if t >= after}
        if not eligible:
            return 0.0
        got = eligible.intersection(self.received_ids)
        return len(got) / len(eligible)

    def latencies_ms(self) -> list[float]:
        return [
            (t - self.frame_send_times[fid]) * 1000
            for fid, t in self.received
            if fid in self.frame_send_times
        ]


def run_stream(
    scenario: StreamScenario,
    *,
    on_tick: Callable[[float, Connection, Connection | None], None] | None = None,
) -> StreamResult:
    rng = random.Random(scenario.seed)

    def rbytes(n: int) -> bytes:
        return rng.randbytes(n)

    host_identity = Identity.generate(rbytes)
    client_identity = Identity.generate(rbytes)
    offer = HostOffer(
        bitrate_kbps=scenario.bitrate_kbps,
        max_bitrate_kbps=scenario.max_bitrate_kbps or scenario.bitrate_kbps,
        fps=scenario.fps,
    )
    host = HostEndpoint(identity=host_identity, offer=offer, config=scenario.config, rng=rbytes)
    hello = rift_pb2.Hello(
        client_name="sim-client",
        supported_codecs=[rift_pb2.H264],
        max_resolution=rift_pb2.Resolution(width=1920, height=1080),
        max_fps=scenario.fps,
    )
    client = Connection.client(
        identity=client_identity,
        peer_addr=HOST_ADDR,
        hello=hello,
        now=0.0,
        config=scenario.config,
        expected_host_id=host_identity.wavry_id,
        rng=rbytes,
    )
    net = SimNetwork(
        client,
        host,
        ImpairmentLink(scenario.uplink, random.Random(scenario.seed * 7 + 1)),
        ImpairmentLink(scenario.downlink, random.Random(scenario.seed * 7 + 2)),
        addr_a=CLIENT_ADDR,
        addr_b=HOST_ADDR,
    )
    result = StreamResult()
    state = {"force_keyframe": True, "last_keyframe": -1e9, "next_frame": 0.0}

    def host_conn() -> Connection | None:
        for conn in host.connections.values():
            if conn.state is ConnectionState.ESTABLISHED:
                return conn
        return None

    def drain(now: float) -> None:
        while (event := client.next_event()) is not None:
            if isinstance(event, ev.SessionEstablished) and result.established_at is None:
                result.established_at = now
            elif isinstance(event, ev.VideoFrameReceived):
                expected = frame_payload(event.frame_id, len(event.data))
                if event.data != expected:
                    result.corrupt_frames += 1
                else:
                    result.received.append((event.frame_id, event.released_at))
            elif isinstance(event, ev.FrameLost):
                result.lost.append(event.frame_id)
            elif isinstance(event, ev.ConnectionClosed):
                result.closed.append(f"client:{event.reason}:{event.message}")
        while (item := host.next_event()) is not None:
            _, event = item
            if isinstance(event, ev.KeyframeRequested):
                result.keyframe_requests += 1
                state["force_keyframe"] = True
            elif isinstance(event, ev.TargetBitrateChanged):
                result.bitrate_changes.append((now, event.bitrate_kbps))
            elif isinstance(event, ev.ConnectionClosed):
                result.closed.append(f"host:{event.reason}:{event.message}")

    def frame_tick(now: float) -> None:
        drain(now)
        conn = host_conn()
        fps = conn.target_fps if conn is not None and scenario.adaptive else scenario.fps
        if conn is not None and now + 1e-9 >= float(state["next_frame"]):
            state["next_frame"] = float(state["next_frame"]) + 1.0 / fps
            if state["next_frame"] < now:
                state["next_frame"] = now + 1.0 / fps
            kbps = conn.encoder_bitrate_kbps if scenario.adaptive else scenario.bitrate_kbps
            size = max(200, int(kbps * 1000 / 8 / fps))
            keyframe = bool(state["force_keyframe"]) or (
                now - float(state["last_keyframe"]) >= scenario.keyframe_interval
            )
            if keyframe:
                size = int(size * scenario.keyframe_factor)
                state["force_keyframe"] = False
                state["last_keyframe"] = now
            fid = conn.send_video_frame(
                frame_payload(conn.next_frame_id, size),
                keyframe=keyframe,
                timestamp_us=int(now * 1e6),
                now=now,
            )
            result.frame_send_times[fid] = now
            result.frames_sent += 1
        if on_tick is not None:
            on_tick(now, client, conn)
        nxt = now + 1.0 / scenario.fps
        if nxt < scenario.duration:
            net.schedule(nxt, frame_tick)

    net.schedule(0.0, frame_tick)
    if scenario.garbage_per_second > 0:
        _schedule_garbage(net, scenario, rng, result)
    if scenario.rebind_client_at is not None:
        net.schedule(scenario.rebind_client_at, lambda _now: net.rebind_a(("203.0.113.7", 50001)))
    # Let in-flight frames settle after the source stops.
    net.run_until(scenario.duration + 0.5)
    drain(net.now)
    result.client_stats = _as_dict(client)
    conn = next(iter(host.connections.values()), None)
    if conn is not None:
        result.host_stats = _as_dict(conn)
    return result


def _schedule_garbage(
    net: SimNetwork, scenario: StreamScenario, rng: random.Random, result: StreamResult
) -> None:
    period = 1.0 / scenario.garbage_per_second

    def throw(now: float) -> None:
        size = rng.randint(0, 1500)
        data = rng.randbytes(size)
        if rng.random() < 0.5 and size >= 18:
            # Half of it looks like RIFT: right magic and version, random rest.
            data = b"RI\x00\x01" + data[4:]
        target: Literal["a", "b"] = "a" if rng.random() < 0.5 else "b"
        net.inject(target, data, ("192.0.2.66", rng.randint(1, 65535)), now)
        result.garbage_sent += 1
        if now + period < scenario.duration:
            net.schedule(now + period, throw)

    net.schedule(0.01, throw)


def _as_dict(conn: Connection) -> dict[str, object]:
    s = conn.stats()
    return {
        "state": s.state,
        "srtt_ms": s.srtt_ms,
        "packets_sent": s.packets_sent,
        "packets_received": s.packets_received,
        "retransmits_sent": s.retransmits_sent,
        "fec_packets_sent": s.fec_packets_sent,
        "fec_recovered": s.fec_recovered,
        "frames_received": s.frames_received,
        "frames_lost": s.frames_lost,
        "target_bitrate_kbps": s.target_bitrate_kbps,
        "drops": s.drops,
    }
