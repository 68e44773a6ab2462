"""Typed events a RIFT connection yields through ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass

from wavry.rift.negotiation import SessionParams
from wavry.rift.proto import rift_pb2

__all__ = [
    "ApprovalRequired",
    "AudioReceived",
    "ConnectionClosed",
    "ControlReceived",
    "Event",
    "FrameLost",
    "HandshakeCompleted",
    "InputReceived",
    "KeyframeRequested",
    "PeerAddressChanged",
    "SessionEstablished",
    "SessionRejected",
    "TargetBitrateChanged",
    "VideoFrameReceived",
]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """The Noise handshake finished and the peer proved its Ed25519 identity."""

    peer_wavry_id: str
    session_alias: int


@dataclass(frozen=True, slots=True)
class ApprovalRequired:
    """Host side: a client that is not on the allow-list asks to connect; call
    ``Connection.approve(now)`` or ``Connection.deny(now)``."""

    peer_wavry_id: str


@dataclass(frozen=True, slots=True)
class SessionEstablished:
    params: SessionParams
    peer_wavry_id: str


@dataclass(frozen=True, slots=True)
class SessionRejected:
    reason: int  # rift_pb2.RejectReason
    message: str


@dataclass(frozen=True, slots=True)
class VideoFrameReceived:
    frame_id: int
    data: bytes
    keyframe: bool
    timestamp_us: int
    capture_us: int
    encode_us: int
    #: when the first chunk arrived and when the frame was released to the application
    first_chunk_at: float
    released_at: float


@dataclass(frozen=True, slots=True)
class FrameLost:
    frame_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class AudioReceived:
    timestamp_us: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class InputReceived:
    message: rift_pb2.InputMessage


@dataclass(frozen=True, slots=True)
class ControlReceived:
    """Application-level control messages (monitor list, clipboard, files, latency...)."""

    message: rift_pb2.ControlMessage


@dataclass(frozen=True, slots=True)
class KeyframeRequested:
    last_complete_frame_id: int


@dataclass(frozen=True, slots=True)
class TargetBitrateChanged:
    bitrate_kbps: int
    fps: int
    fec_ratio: float


@dataclass(frozen=True, slots=True)
class PeerAddressChanged:
    old: Address
    new: Address


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    reason: int  # rift_pb2.DisconnectReason
    message: str
    by_peer: bool


Event = (
    HandshakeCompleted
    | ApprovalRequired
    | SessionEstablished
    | SessionRejected
    | VideoFrameReceived
    | FrameLost
    | AudioReceived
    | InputReceived
    | ControlReceived
    | KeyframeRequested
    | TargetBitrateChanged
    | PeerAddressChanged
    | ConnectionClosed
)
