"""Split an encoded video frame into ``VideoChunk`` messages, one per datagram.

Normative rules (docs/protocol.md, media chunking):

* A frame of ``n`` bytes becomes ``max(1, ceil(n / max_payload))`` chunks; an empty frame is one
  chunk with an empty payload. Chunk ``i`` carries bytes
  ``[i * max_payload, (i + 1) * max_payload)`` of the frame.
* Every chunk of a frame carries the same ``frame_id``, ``chunk_count``, ``timestamp_us``,
  ``keyframe``, ``capture_us`` and ``encode_us``; ``chunk_index`` runs ``0 .. chunk_count - 1``.
* ``chunk_count`` is at most :data:`MAX_CHUNKS_PER_FRAME` (8192). Receivers reject larger counts,
  so a sender must not produce them (``LocalProtocolError``).
* :data:`DEFAULT_CHUNK_PAYLOAD` is 1200 bytes: with the 18-byte transport header, the AEAD tag and
  the protobuf framing a chunk datagram stays well below a 1280-byte IPv6 minimum MTU path.
"""

from __future__ import annotations

from wavry.rift.errors import LocalProtocolError
from wavry.rift.proto import rift_pb2

__all__ = ["DEFAULT_CHUNK_PAYLOAD", "MAX_CHUNKS_PER_FRAME", "chunk_count_for", "chunk_frame"]

DEFAULT_CHUNK_PAYLOAD = 1200
"""Default bytes of frame data per ``VideoChunk``."""

MAX_CHUNKS_PER_FRAME = 8192
"""Upper bound on ``chunk_count`` (≈ 9.8 MB per frame at the default payload size)."""

_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


def chunk_count_for(size: int, max_payload: int = DEFAULT_CHUNK_PAYLOAD) -> int:
    """Number of chunks a frame of ``size`` bytes needs (at least 1)."""
    if max_payload < 1:
        raise LocalProtocolError(f"max_payload must be >= 1, got {max_payload}")
    return max(1, -(-size // max_payload))


def chunk_frame(
    frame_id: int,
    data: bytes,
    *,
    keyframe: bool,
    timestamp_us: int,
    capture_us: int = 0,
    encode_us: int = 0,
    max_payload: int = DEFAULT_CHUNK_PAYLOAD,
) -> list[rift_pb2.VideoChunk]:
    """Split one encoded frame into ``VideoChunk`` messages in chunk order.

    Raises ``LocalProtocolError`` if the frame needs more than :data:`MAX_CHUNKS_PER_FRAME`
    chunks or a field is out of its wire range.
    """
    _check_range("frame_id", frame_id, _U64_MAX)
    _check_range("timestamp_us", timestamp_us, _U64_MAX)
    _check_range("capture_us", capture_us, _U32_MAX)
    _check_range("encode_us", encode_us, _U32_MAX)
    count = chunk_count_for(len(data), max_payload)
    if count > MAX_CHUNKS_PER_FRAME:
        raise LocalProtocolError(
            f"frame {frame_id} of {len(data)} bytes needs {count} chunks of {max_payload} bytes; "
            f"the limit is {MAX_CHUNKS_PER_FRAME} (raise max_payload or lower the bitrate)"
        )
    view = memoryview(data)
    return [
        rift_pb2.VideoChunk(
            frame_id=frame_id,
            chunk_index=index,
            chunk_count=count,
            timestamp_us=timestamp_us,
            keyframe=keyframe,
            payload=bytes(view[index * max_payload : (index + 1) * max_payload]),
            capture_us=capture_us,
            encode_us=encode_us,
        )
        for index in range(count)
    ]


def _check_range(name: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise LocalProtocolError(f"{name}={value} is outside 0..{maximum}")
