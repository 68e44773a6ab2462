"""Protocol knobs of a RIFT connection (documented defaults; docs/protocol.md §9 lists them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wavry.rift.errors import LocalProtocolError
from wavry.rift.proto import rift_pb2

__all__ = ["PROTOCOL_VERSION", "HostOffer", "RiftConfig"]

PROTOCOL_VERSION = 1


@dataclass(frozen=True, slots=True)
class RiftConfig:
    """Transport behaviour. Both peers may use different values; nothing here is negotiated."""

    #: Video bytes per chunk (one chunk per datagram). The largest sealed datagram is the
    #: chunk plus ~220 B (header, protobuf framing, FEC, AEAD tag): 1418 B at 1200, which with
    #: the relay's 20-byte header still fits a 1500 B IPv6 packet (1452 B of UDP payload). So
    #: 1200 is also the upper bound (tests/rift/test_connection.py measures it).
    chunk_payload: int = 1200
    #: First handshake retransmission after this long; doubles up to ``handshake_retry_max``.
    handshake_retry_initial: float = 0.25
    handshake_retry_max: float = 2.0
    #: With several candidate paths (hole punching) MSG1 starts on this shorter schedule: the
    #: first copies are expected to die at a NAT that has not opened yet.
    punch_retry: float = 0.1
    #: Give up on a handshake (or an unanswered Hello) after this long.
    handshake_timeout: float = 10.0
    #: Give up on a session whose Hello is not answered (long enough for a host's user to
    #: approve an unknown client at a prompt).
    hello_timeout: float = 60.0
    #: Close when nothing authenticated arrived for this long.
    idle_timeout: float = 10.0
    #: Ping interval; pings double as keepalives.
    ping_interval: float = 0.5
    #: StatsReport interval of a media receiver (DELTA runs on each report).
    stats_interval: float = 0.05
    #: Reassembly deadline = clamp(k * srtt, min, max), re-evaluated on every RTT sample.
    reassembly_deadline_min: float = 0.05
    reassembly_deadline_max: float = 0.3
    reassembly_deadline_rtt_factor: float = 4.0
    #: Adaptive playout buffer bounds (latency first: 0 when the network is smooth).
    jitter_buffer_max: float = 0.010
    #: FEC: "rs" (Reed-Solomon via zfec, ``fec_parity`` parities per group: survives that many
    #: losses per group) or "xor" (one parity: survives one). RS costs ~1 us more per packet
    #: and cut frame loss at 5% random loss from ~1.5% to ~0.5% in the simulator.
    fec_scheme: str = "rs"
    fec_parity: int = 4
    fec_enabled: bool = True
    #: Initial FEC ratio (parity/data) before DELTA adapts it.
    fec_ratio: float = 0.1
    nack_enabled: bool = True
    #: Media is paced at pacing_gain x target bitrate (spreads a frame over < 1 frame time),
    #: after a burst of up to pacing_burst_bytes (a typical P-frame leaves at once: pacing
    #: it would add its whole spread to the latency of that frame).
    pacing_gain: float = 1.5
    pacing_burst_bytes: int = 16 * 1300
    #: Sender history for retransmissions (packets) and how long an entry stays useful.
    retransmit_history: int = 2048
    retransmit_max_age: float = 1.0
    #: Minimum spacing of keyframe requests while frames keep failing.
    keyframe_request_interval: float = 0.1
    #: Bounded queues (datagrams waiting to be sent / events not yet read).
    max_send_queue: int = 4096
    max_events: int = 4096
    #: Seconds between transport-key epochs (re-key); also re-keyed when an epoch's ids run out.
    rekey_interval: float = 86400.0

    def __post_init__(self) -> None:
        if not 64 <= self.chunk_payload <= 1200:
            raise LocalProtocolError("chunk_payload must be within 64..1200 bytes")
        if self.fec_scheme not in ("xor", "rs"):
            raise LocalProtocolError("fec_scheme must be 'xor' or 'rs'")
        if not 1 <= self.fec_parity <= 16:
            raise LocalProtocolError("fec_parity must be within 1..16")
        if self.idle_timeout <= self.ping_interval:
            raise LocalProtocolError("idle_timeout must exceed ping_interval")


def _default_codecs() -> tuple[rift_pb2.Codec, ...]:
    return (rift_pb2.H264,)


@dataclass(frozen=True, slots=True)
class HostOffer:
    """What a host can stream; the Hello/HelloAck negotiation picks within it."""

    codecs: tuple[rift_pb2.Codec, ...] = field(default_factory=_default_codecs)  # preference order
    width: int = 1280
    height: int = 720
    fps: int = 60
    bitrate_kbps: int = 20_000
    min_bitrate_kbps: int = 500
    max_bitrate_kbps: int = 100_000
    keyframe_interval_ms: int = 1000

    def __post_init__(self) -> None:
        if not self.codecs:
            raise LocalProtocolError("a host must offer at least one codec")
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise LocalProtocolError("stream resolution must be within 16..8192")
        if not 1 <= self.fps <= 240:
            raise LocalProtocolError("fps must be within 1..240")
        if not 0 < self.min_bitrate_kbps <= self.bitrate_kbps <= self.max_bitrate_kbps:
            raise LocalProtocolError("need 0 < min_bitrate <= bitrate <= max_bitrate")
