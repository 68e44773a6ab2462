"""Hello/HelloAck negotiation: a pure function of (Hello, HostOffer) -> parameters or refusal."""

from __future__ import annotations

from dataclasses import dataclass

from wavry.rift.config import PROTOCOL_VERSION, HostOffer
from wavry.rift.proto import rift_pb2

__all__ = ["Rejection", "SessionParams", "hello_ack", "negotiate"]

_KNOWN_CODECS = frozenset(rift_pb2.Codec.values())


@dataclass(frozen=True, slots=True)
class SessionParams:
    codec: rift_pb2.Codec
    width: int
    height: int
    fps: int
    bitrate_kbps: int
    keyframe_interval_ms: int


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: rift_pb2.RejectReason
    message: str


def _fit(width: int, height: int, max_w: int, max_h: int) -> tuple[int, int]:
    """Scale (width, height) down to fit (max_w, max_h), keeping aspect and even sizes."""
    if width <= max_w and height <= max_h:
        return width, height
    scale = min(max_w / width, max_h / height)
    return max(16, int(width * scale) & ~1), max(16, int(height * scale) & ~1)


def negotiate(hello: rift_pb2.Hello, offer: HostOffer) -> SessionParams | Rejection:
    if hello.protocol_version != PROTOCOL_VERSION:
        return Rejection(
            rift_pb2.REJECT_UNSUPPORTED_VERSION,
            f"host speaks RIFT protocol {PROTOCOL_VERSION}, client {hello.protocol_version}",
        )
    client_codecs = {c for c in hello.supported_codecs if c in _KNOWN_CODECS}
    codec = next((c for c in offer.codecs if c in client_codecs), None)
    if codec is None:
        host_names = ", ".join(rift_pb2.Codec.Name(c) for c in offer.codecs)
        return Rejection(
            rift_pb2.REJECT_NO_COMMON_CODEC,
            f"no common codec: host encodes {host_names}",
        )
    max_res = hello.max_resolution
    if max_res.width < 16 or max_res.height < 16 or hello.max_fps == 0:
        return Rejection(
            rift_pb2.REJECT_INVALID_PARAMETERS,
            "client must announce max_resolution >= 16x16 and max_fps >= 1",
        )
    width, height = _fit(offer.width, offer.height, max_res.width, max_res.height)
    fps = min(offer.fps, hello.max_fps)
    bitrate = offer.bitrate_kbps
    if hello.max_bitrate_kbps:
        bitrate = max(offer.min_bitrate_kbps, min(bitrate, hello.max_bitrate_kbps))
    keyframe_ms = offer.keyframe_interval_ms
    if hello.keyframe_interval_ms:
        keyframe_ms = max(100, min(hello.keyframe_interval_ms, 60_000))
    return SessionParams(codec, width, height, fps, bitrate, keyframe_ms)


def hello_ack(result: SessionParams | Rejection) -> rift_pb2.HelloAck:
    """The ``HelloAck`` that states a negotiation's result (the host adds its session id and
    alias; the gateway's ``ANSWER_RIFT`` preview carries it as it is)."""
    if isinstance(result, Rejection):
        return rift_pb2.HelloAck(
            accepted=False, reject_reason=result.reason, reject_message=result.message
        )
    return rift_pb2.HelloAck(
        accepted=True,
        selected_codec=result.codec,
        stream_resolution=rift_pb2.Resolution(width=result.width, height=result.height),
        fps=result.fps,
        initial_bitrate_kbps=result.bitrate_kbps,
        keyframe_interval_ms=result.keyframe_interval_ms,
    )
