"""Video decoders: the interface and the PyAV (FFmpeg) implementation.

Latency: decoders use slice threading (``thread_type = "SLICE"``) and ``LOW_DELAY``, so the
picture for packet N comes out of ``decode`` for packet N. FFmpeg's default frame threading
would hold ``threads - 1`` frames back. dav1d (AV1) gets ``max_frame_delay=1`` for the same
reason.

Robustness: ``decode`` never raises on bad input. Until the first keyframe (a stream joined
mid-way) and after any decode error, the decoder *waits for a keyframe*: non-keyframe packets
are skipped without being fed to FFmpeg (a cheap scan of NAL/OBU headers, confirmed by the
decoded frame's key flag), so the window never shows smeared garbage; ``needs_keyframe`` tells
the client to ask the host for one. Errors and skipped packets are counted in
:class:`DecoderStats`. When the transport knows a frame was lost, the client calls
``require_keyframe()`` to enter the same state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import av

from wavry.media.frames import DecodedFrame
from wavry.rift.proto import rift_pb2

__all__ = [
    "DecoderError",
    "DecoderStats",
    "DecoderUnavailable",
    "VideoDecoder",
    "contains_keyframe",
]

log = logging.getLogger(__name__)

_DECODERS: dict[int, str] = {
    rift_pb2.H264: "h264",
    rift_pb2.HEVC: "hevc",
    rift_pb2.AV1: "libdav1d",
}


class DecoderError(Exception):
    """Base of decoder failures that are not about one packet's content."""


class DecoderUnavailable(DecoderError):
    """No decoder for this codec here."""


@dataclass(slots=True)
class DecoderStats:
    """Counters since the decoder was created."""

    packets: int = 0
    frames: int = 0
    errors: int = 0
    skipped_waiting_keyframe: int = 0
    last_error: str = ""


def _nal_types(data: bytes, shift: int, mask: int, limit: int = 64) -> list[int]:
    """NAL unit types of an Annex B buffer (at most ``limit``), from the header byte after
    each 00 00 01 start code."""
    types: list[int] = []
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0 and pos + 3 < len(data) and len(types) < limit:
        types.append((data[pos + 3] >> shift) & mask)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return types


def contains_keyframe(codec: rift_pb2.Codec, data: bytes) -> bool:
    """Whether an access unit holds a random access point a decoder can start from.

    H.264: an IDR slice (NAL type 5). HEVC: an IRAP picture (types 16-23: BLA, IDR, CRA).
    AV1: a sequence header OBU (type 1), which encoders put in front of every keyframe; the
    decoded frame's key flag is checked as well, since a sequence header alone proves nothing.
    """
    if codec == rift_pb2.H264:
        return 5 in _nal_types(data, 0, 0x1F)
    if codec == rift_pb2.HEVC:
        return any(16 <= t <= 23 for t in _nal_types(data, 1, 0x3F))
    if codec == rift_pb2.AV1:
        return _av1_has_sequence_header(data)
    return False


def _av1_has_sequence_header(data: bytes) -> bool:
    """Walk the OBUs of a low-overhead AV1 temporal unit looking for a sequence header."""
    pos = 0
    while pos < len(data):
        header = data[pos]
        obu_type = (header >> 3) & 0x0F
        has_ext = (header >> 2) & 1
        has_size = (header >> 1) & 1
        if obu_type == 1:
            return True
        pos += 1 + has_ext
        if not has_size:
            return False  # the last OBU runs to the end of the buffer
        size = shift = 0
        while pos < len(data):
            byte = data[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80 or shift > 56:
                break
        pos += size
    return False


class VideoDecoder:
    """A low-latency FFmpeg decoder (through PyAV) for one wire codec; one thread at a time."""

    def __init__(
        self,
        codec: rift_pb2.Codec,
        *,
        threads: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        name = _DECODERS.get(int(codec))
        if name is None:
            raise DecoderUnavailable(f"no decoder for codec {codec!r}")
        self._codec = codec
        self._name = name
        self._threads = threads
        self._clock = clock
        self._stats = DecoderStats()
        self._waiting = True
        self._ctx = self._open()

    def _open(self) -> av.VideoCodecContext:
        try:
            ctx = av.CodecContext.create(self._name, "r")
        except (av.error.FFmpegError, ValueError) as exc:
            raise DecoderUnavailable(f"decoder {self._name} is not available: {exc}") from exc
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.thread_type = "SLICE"
        ctx.thread_count = self._threads
        ctx.flags |= av.codec.context.Flags.low_delay
        if self._name == "libdav1d":
            ctx.options = {"max_frame_delay": "1"}
        try:
            ctx.open()
        except (av.error.FFmpegError, ValueError) as exc:
            raise DecoderUnavailable(f"decoder {self._name} does not open: {exc}") from exc
        return ctx

    @property
    def codec(self) -> rift_pb2.Codec:
        return self._codec

    @property
    def needs_keyframe(self) -> bool:
        """True while waiting for a keyframe: the client should request one."""
        return self._waiting

    @property
    def stats(self) -> DecoderStats:
        return self._stats

    def require_keyframe(self) -> None:
        """Drop everything until the next keyframe (call after a known frame loss)."""
        if not self._waiting:
            self._waiting = True
            self._ctx.flush_buffers()

    def _fail(self, reason: str) -> None:
        self._stats.errors += 1
        self._stats.last_error = reason
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s decode error: %s", self._name, reason)
        self.require_keyframe()

    def decode(self, data: bytes) -> DecodedFrame | None:
        """Decode one access unit; None when there is nothing to show (yet). Never raises
        on bad input."""
        self._stats.packets += 1
        if not data:
            # An empty packet would put FFmpeg into draining (end of stream) mode.
            self._fail("empty packet")
            return None
        if self._waiting and not contains_keyframe(self._codec, data):
            self._stats.skipped_waiting_keyframe += 1
            return None
        start = self._clock()
        try:
            frames = self._ctx.decode(av.Packet(data))
        except (av.error.FFmpegError, ValueError) as exc:
            self._fail(str(exc))
            return None
        if not frames:
            return None
        # With slice threading there is one frame per packet; if a decoder ever returns more,
        # only the newest matters for a live picture.
        image = frames[-1]
        if self._waiting:
            if not image.key_frame:
                self._stats.skipped_waiting_keyframe += 1
                return None
            self._waiting = False
        try:
            # the pixel conversion can fail on a corrupt stream too (e.g. errno 95 from
            # reformat); decode() never raises on network input
            decoded = DecodedFrame.from_av(image, decode_start=start, decode_end=self._clock())
        except (av.error.FFmpegError, ValueError) as exc:
            self._fail(str(exc))
            return None
        self._stats.frames += 1
        return decoded

    def close(self) -> None:
        """Forget decoder state; a later ``decode`` starts again from a keyframe."""
        self.require_keyframe()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
