"""Video encoders: the interface, the PyAV (FFmpeg) implementation and the registry.

Zero-latency settings (one access unit out per frame in, nothing buffered):

* no B-frames, no lookahead, no scene-cut keyframes, slice threads (``threads`` = 2) so a frame
  is split across cores instead of pipelined across frames;
* a VBV buffer of 2 frames: measured frames stay under ~1.8x the per-frame budget, so no
  frame takes much longer than its frame time to leave the pacer;
* keyframes only on request (:meth:`VideoEncoder.request_keyframe` / ``force_keyframe``) and
  every ``keyframe_interval`` seconds if the host asks for that; each keyframe is an IDR with
  SPS/PPS (VPS for HEVC, a sequence header for AV1) in front, so a client can join on any one.

Runtime bitrate (from DELTA): FFmpeg's libx264 wrapper calls ``x264_encoder_reconfig`` when
``bit_rate`` changes on an open context. x264 does not re-target its average-bitrate control at
runtime, though: only in its CBR mode (VBV max rate == bitrate at open) does a reconfigure move
the VBV max rate to the new bitrate, which is what then limits the output (measured: with max
rate 1.5x the bitrate a runtime change has no effect at all). PyAV cannot change the VBV of an
open context itself. So x264 is opened for a reference bitrate B0 in CBR mode at 1.5 x B0 (the
headroom) with a VBV buffer of 2 frames of B0, and the bitrate is set to B0 before the first
frame. Targets in [0.5, 1.5] x B0 then apply on the next frame with no keyframe. Beyond that
window — and for any change of more than 15% on encoders that cannot reconfigure (x265,
SVT-AV1) — the encoder is reopened at the new rate, which costs an IDR, at most once per
``REOPEN_MIN_INTERVAL`` seconds; in between the target is clamped into the window. An fps
change always reopens (zerolatency makes x264 assume the configured constant frame rate).

Measured cost of this mode (720p60 hard content, ultrafast): x264's VBV is conservative with a
2-frame buffer and no lookahead, so it delivers 80-90% of the target (ABR with a looser VBV
gets ~97% but cannot change rate without a reopen); DELTA sees the real rate either way. A
1.5-frame buffer undershoots by a third, which is why the buffer is 2 frames.

Threading: ``encode`` runs in one thread (the host's encode thread); the setters
(``set_target_bitrate``, ``set_fps``, ``request_keyframe``) may be called from any thread — they
only record the request, which ``encode`` applies before the next frame.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType
from typing import Self

import av
from av.video.frame import PictureType

from wavry.media.frames import EncodedFrame, RawFrame
from wavry.rift.proto import rift_pb2

__all__ = [
    "REOPEN_MIN_INTERVAL",
    "EncoderConfig",
    "EncoderError",
    "EncoderProfile",
    "EncoderUnavailable",
    "PyAVEncoder",
    "VideoEncoder",
    "create_encoder",
    "encoder_profile",
    "encoder_profiles",
    "register_encoder",
]

log = logging.getLogger(__name__)

#: Minimum seconds between two encoder reopens caused by bitrate changes.
REOPEN_MIN_INTERVAL = 1.0
# Runtime bitrate window around the bitrate the VBV was sized for (see module docstring): down
# to half of it, up to the profile's headroom.
_WINDOW_LOW = 0.5
_HEADROOM = 1.5
# Encoders without runtime reconfiguration reopen for changes beyond this fraction.
_REOPEN_TOLERANCE = 0.15
_VBV_FRAMES = 2.0
_MIN_KBPS = 50
_MAX_KBPS = 500_000


class EncoderError(Exception):
    """An encoder failed while running (a bug or a broken device; the host may reopen)."""


class EncoderUnavailable(EncoderError):
    """This encoder cannot be opened here (no hardware, unknown codec, bad parameters)."""


@dataclass(frozen=True, slots=True)
class EncoderConfig:
    """What a host asks of an encoder. ``keyframe_interval`` is seconds between periodic
    keyframes (0: only on request). ``threads`` are slice threads."""

    width: int
    height: int
    fps: int
    bitrate_kbps: int
    keyframe_interval: float = 0.0
    threads: int = 2

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError(f"encoder size {self.width}x{self.height} must be even and >= 16")
        if not 1 <= self.fps <= 480:
            raise ValueError("fps must be in 1..480")
        if not _MIN_KBPS <= self.bitrate_kbps <= _MAX_KBPS:
            raise ValueError(f"bitrate_kbps must be in {_MIN_KBPS}..{_MAX_KBPS}")
        if self.keyframe_interval < 0:
            raise ValueError("keyframe_interval must be >= 0")
        if not 1 <= self.threads <= 64:
            raise ValueError("threads must be in 1..64")


# Codec-specific options for a config (rate control options are added by the encoder).
OptionsFn = Callable[[EncoderConfig], dict[str, str]]


@dataclass(frozen=True, slots=True)
class EncoderProfile:
    """How to drive one FFmpeg encoder for low latency."""

    name: str
    codec: rift_pb2.Codec
    hardware: bool
    options: OptionsFn
    #: FFmpeg applies ``bit_rate`` changes to the open encoder (no reopen needed).
    runtime_bitrate: bool = False
    #: Open at ``headroom`` x the target (bitrate = VBV max rate), then lower the bitrate to
    #: the target: runtime targets up to the headroom then apply in place (x264 only re-targets
    #: a running encoder in this CBR-style mode).
    headroom: float = 1.0
    pix_fmt: str = "yuv420p"


def _x264(config: EncoderConfig) -> dict[str, str]:
    return {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "forced-idr": "1",
        "rc-lookahead": "0",
        "x264-params": "repeat-headers=1:sliced-threads=1:scenecut=0:bframes=0",
    }


def _x265(config: EncoderConfig) -> dict[str, str]:
    return {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "forced-idr": "1",
        "x265-params": (
            f"repeat-headers=1:bframes=0:rc-lookahead=0:scenecut=0:frame-threads=1"
            f":pools={config.threads}:log-level=error"
        ),
    }


def _svtav1(config: EncoderConfig) -> dict[str, str]:
    # SVT-AV1 only does CBR in low-delay mode: its max rate must equal the bitrate (headroom 1).
    return {
        "preset": "12",
        "svtav1-params": f"rtc=1:pred-struct=1:lp={config.threads}:fast-decode=1",
    }


def _nvenc(config: EncoderConfig) -> dict[str, str]:
    return {
        "preset": "p1",
        "tune": "ull",
        "zerolatency": "1",
        "delay": "0",
        "rc": "cbr",
        "rc-lookahead": "0",
        "forced-idr": "1",
    }


def _qsv(config: EncoderConfig) -> dict[str, str]:
    return {
        "preset": "veryfast",
        "async_depth": "1",
        "low_delay_brc": "1",
        "look_ahead": "0",
        "forced_idr": "1",
    }


def _amf(config: EncoderConfig) -> dict[str, str]:
    return {
        "usage": "ultralowlatency",
        "quality": "speed",
        "rc": "cbr",
    }


_PROFILES: dict[str, EncoderProfile] = {}


def register_encoder(profile: EncoderProfile) -> None:
    """Add an FFmpeg encoder profile to the registry (keyed by FFmpeg encoder name)."""
    _PROFILES[profile.name] = profile


def encoder_profiles() -> list[EncoderProfile]:
    """Registered profiles, hardware first, in probe order."""
    return sorted(_PROFILES.values(), key=lambda p: not p.hardware)


def encoder_profile(name: str) -> EncoderProfile:
    try:
        return _PROFILES[name]
    except KeyError:
        raise EncoderUnavailable(
            f"unknown encoder {name!r}; known: {', '.join(sorted(_PROFILES))}"
        ) from None


H264, HEVC, AV1 = rift_pb2.H264, rift_pb2.HEVC, rift_pb2.AV1

# Hardware first. VAAPI is left out on purpose: its encoders need frames uploaded to a
# hw_frames_ctx, which PyAV's encoding API does not offer; NVENC/QSV/AMF accept system memory.
for _profile in (
    EncoderProfile("h264_nvenc", H264, True, _nvenc, runtime_bitrate=True),
    EncoderProfile("hevc_nvenc", HEVC, True, _nvenc, runtime_bitrate=True),
    EncoderProfile("av1_nvenc", AV1, True, _nvenc, runtime_bitrate=True),
    EncoderProfile("h264_qsv", H264, True, _qsv, runtime_bitrate=True, pix_fmt="nv12"),
    EncoderProfile("hevc_qsv", HEVC, True, _qsv, runtime_bitrate=True, pix_fmt="nv12"),
    EncoderProfile("av1_qsv", AV1, True, _qsv, runtime_bitrate=True, pix_fmt="nv12"),
    EncoderProfile("h264_amf", H264, True, _amf),
    EncoderProfile("hevc_amf", HEVC, True, _amf),
    EncoderProfile("av1_amf", AV1, True, _amf),
    EncoderProfile("libx264", H264, False, _x264, runtime_bitrate=True, headroom=_HEADROOM),
    EncoderProfile("libx265", HEVC, False, _x265),
    EncoderProfile("libsvtav1", AV1, False, _svtav1),
):
    register_encoder(_profile)


class VideoEncoder(ABC):
    """A low-latency video encoder. See the module docstring for threading rules."""

    @abstractmethod
    def encode(self, frame: RawFrame, *, force_keyframe: bool = False) -> EncodedFrame | None:
        """Encode one frame; None if the encoder produced no output for it (yet)."""

    @abstractmethod
    def set_target_bitrate(self, kbps: int) -> None:
        """Ask for a new bitrate; applied before the next frame."""

    @abstractmethod
    def set_fps(self, fps: int) -> None:
        """Ask for a new frame rate; applied before the next frame."""

    @abstractmethod
    def request_keyframe(self) -> None:
        """Make the next frame a keyframe (IDR with parameter sets)."""

    @abstractmethod
    def close(self) -> None:
        """Release the encoder. Idempotent."""

    @property
    @abstractmethod
    def codec_name(self) -> str:
        """The FFmpeg encoder name, e.g. ``libx264``."""

    @property
    @abstractmethod
    def codec(self) -> rift_pb2.Codec:
        """The wire codec (``rift_pb2.H264`` ...)."""

    @property
    @abstractmethod
    def width(self) -> int: ...

    @property
    @abstractmethod
    def height(self) -> int: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _clamp_kbps(kbps: int) -> int:
    return max(_MIN_KBPS, min(_MAX_KBPS, int(kbps)))


class PyAVEncoder(VideoEncoder):
    """An FFmpeg encoder through PyAV, driven by an :class:`EncoderProfile`."""

    def __init__(
        self,
        profile: EncoderProfile,
        config: EncoderConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._profile = profile
        self._config = config
        self._clock = clock
        self._ctx: av.VideoCodecContext | None = None
        self._vbv_kbps = config.bitrate_kbps
        self._applied_kbps = config.bitrate_kbps
        self._target_kbps = config.bitrate_kbps
        self._target_fps = config.fps
        self._keyframe_requested = False
        self._last_keyframe: float | None = None
        self._last_reopen = float("-inf")
        self._pts = 0
        # pts -> (frame_index, capture_time, encode_start) for frames inside the encoder.
        self._in_flight: dict[int, tuple[int, float, float]] = {}
        self._ready: deque[EncodedFrame] = deque()
        self.reopens = 0
        self._open(config.bitrate_kbps)

    # -- properties ------------------------------------------------------------------------

    @property
    def codec_name(self) -> str:
        return self._profile.name

    @property
    def codec(self) -> rift_pb2.Codec:
        return self._profile.codec

    @property
    def width(self) -> int:
        return self._config.width

    @property
    def height(self) -> int:
        return self._config.height

    @property
    def fps(self) -> int:
        return self._config.fps

    @property
    def bitrate_kbps(self) -> int:
        """The bitrate the encoder is running at now (after clamping to its window)."""
        return self._applied_kbps

    # -- setup -----------------------------------------------------------------------------

    def _open(self, kbps: int) -> None:
        cfg = self._config
        if self._profile.name == "libsvtav1":
            # SVT-AV1 prints an info banner on every open unless told otherwise.
            os.environ.setdefault("SVT_LOG", "1")
        try:
            ctx = av.CodecContext.create(self._profile.name, "w")
        except (av.error.FFmpegError, ValueError) as exc:
            raise EncoderUnavailable(f"{self._profile.name}: {exc}") from exc
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.width = cfg.width
        ctx.height = cfg.height
        ctx.pix_fmt = self._profile.pix_fmt
        ctx.time_base = Fraction(1, cfg.fps)
        ctx.framerate = Fraction(cfg.fps, 1)
        headroom = self._profile.headroom
        ctx.bit_rate = int(kbps * headroom) * 1000
        # Keyframes come from requests and the host's interval, never from the GOP length.
        ctx.gop_size = cfg.fps * 3600
        ctx.max_b_frames = 0
        ctx.thread_count = cfg.threads
        ctx.thread_type = "SLICE"
        # BT.709 limited range, what capture produces; written into the VUI.
        ctx.colorspace = 1
        ctx.color_primaries = 1
        ctx.color_trc = 1
        ctx.color_range = 1
        ctx.options = {
            **self._profile.options(cfg),
            "maxrate": str(int(kbps * headroom) * 1000),
            "bufsize": str(int(kbps * 1000 / cfg.fps * _VBV_FRAMES)),
        }
        try:
            ctx.open()
        except (av.error.FFmpegError, ValueError) as exc:
            raise EncoderUnavailable(f"{self._profile.name} does not open here: {exc}") from exc
        if headroom != 1.0:
            ctx.bit_rate = kbps * 1000  # re-targeted before the first frame
        self._ctx = ctx
        self._vbv_kbps = kbps
        self._applied_kbps = kbps
        self._pts = 0
        self._in_flight.clear()

    def _reopen(self, kbps: int, now: float) -> None:
        log.info(
            "%s: reopening at %d kbps, %d fps (IDR follows)",
            self._profile.name,
            kbps,
            self._config.fps,
        )
        self._close_ctx()
        self._open(kbps)
        self._last_reopen = now
        self.reopens += 1

    # -- requests (any thread) -------------------------------------------------------------

    def set_target_bitrate(self, kbps: int) -> None:
        self._target_kbps = _clamp_kbps(kbps)

    def set_fps(self, fps: int) -> None:
        if not 1 <= fps <= 480:
            raise ValueError("fps must be in 1..480")
        self._target_fps = fps

    def request_keyframe(self) -> None:
        self._keyframe_requested = True

    # -- encode thread ---------------------------------------------------------------------

    def _apply_requests(self, now: float) -> None:
        """Apply pending fps/bitrate requests; may reopen (rate-limited)."""
        target = self._target_kbps
        if self._target_fps != self._config.fps:
            self._config = EncoderConfig(
                width=self._config.width,
                height=self._config.height,
                fps=self._target_fps,
                bitrate_kbps=target,
                keyframe_interval=self._config.keyframe_interval,
                threads=self._config.threads,
            )
            self._reopen(target, now)
            return
        if target == self._applied_kbps:
            return
        ratio = target / self._vbv_kbps
        if self._profile.runtime_bitrate:
            in_window = _WINDOW_LOW <= ratio <= self._profile.headroom
        else:
            in_window = abs(target / self._applied_kbps - 1) <= _REOPEN_TOLERANCE
        if not in_window and now - self._last_reopen >= REOPEN_MIN_INTERVAL:
            self._reopen(target, now)
            return
        if self._profile.runtime_bitrate:
            low, high = self._vbv_kbps * _WINDOW_LOW, self._vbv_kbps * self._profile.headroom
            applied = int(min(max(target, low), high))
            if applied != self._applied_kbps:
                assert self._ctx is not None
                self._ctx.bit_rate = applied * 1000
                self._applied_kbps = applied

    def _wants_keyframe(self, force: bool, capture_time: float) -> bool:
        if force or self._keyframe_requested or self._pts == 0:
            return True
        interval = self._config.keyframe_interval
        return (
            interval > 0
            and self._last_keyframe is not None
            and capture_time - self._last_keyframe >= interval
        )

    def encode(self, frame: RawFrame, *, force_keyframe: bool = False) -> EncodedFrame | None:
        if self._ctx is None:
            raise EncoderError("encoder is closed")
        start = self._clock()
        self._apply_requests(start)
        ctx = self._ctx
        assert ctx is not None
        image = frame.image
        cfg = self._config
        if (
            image.width != cfg.width
            or image.height != cfg.height
            or image.format.name != self._profile.pix_fmt
        ):
            image = image.reformat(
                width=cfg.width,
                height=cfg.height,
                format=self._profile.pix_fmt,
                interpolation="BILINEAR",
            )
        keyframe = self._wants_keyframe(force_keyframe, frame.capture_time)
        # The image may be shared (an unchanged screen re-sends the previous picture), so
        # both fields are set every time rather than only when forcing.
        image.pict_type = PictureType.I if keyframe else PictureType.NONE
        image.pts = self._pts
        self._in_flight[self._pts] = (frame.frame_index, frame.capture_time, start)
        self._pts += 1
        try:
            packets = ctx.encode(image)
        except av.error.FFmpegError as exc:
            raise EncoderError(f"{self._profile.name} failed to encode: {exc}") from exc
        if keyframe:
            self._keyframe_requested = False
            self._last_keyframe = frame.capture_time
        end = self._clock()
        for packet in packets:
            pts = packet.pts if packet.pts is not None else -1
            index, capture_time, enc_start = self._in_flight.pop(
                pts, (frame.frame_index, frame.capture_time, start)
            )
            self._ready.append(
                EncodedFrame(
                    data=bytes(packet),
                    keyframe=bool(packet.is_keyframe),
                    frame_index=index,
                    capture_time=capture_time,
                    encode_start=enc_start,
                    encode_end=end,
                )
            )
        # Zero-latency encoders give exactly one packet per frame; anything else queues here
        # and comes out one per call rather than being merged into a bogus access unit.
        return self._ready.popleft() if self._ready else None

    def _close_ctx(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        try:
            ctx.encode(None)  # flush: SVT-AV1 complains when closed without end-of-stream
        except av.error.FFmpegError:
            pass  # nothing to drain, or the device is gone; either way we are closing

    def close(self) -> None:
        self._close_ctx()
        self._ready.clear()
        self._in_flight.clear()


def create_encoder(
    codec: rift_pb2.Codec,
    *,
    width: int,
    height: int,
    fps: int,
    bitrate_kbps: int,
    keyframe_interval: float = 0.0,
    threads: int = 2,
    name: str = "auto",
    clock: Callable[[], float] = time.monotonic,
) -> VideoEncoder:
    """Open an encoder for the wire ``codec``.

    ``name`` is a config string: ``"auto"`` takes the first registered encoder of that codec
    that opens here, hardware first (offer HEVC/AV1 only when :func:`wavry.media.probe.
    offered_codecs` found them real time); an FFmpeg encoder name (``libx264``, ``h264_nvenc``)
    insists on that one. Raises :class:`EncoderUnavailable` when nothing suitable opens.
    """
    config = EncoderConfig(
        width=width,
        height=height,
        fps=fps,
        bitrate_kbps=bitrate_kbps,
        keyframe_interval=keyframe_interval,
        threads=threads,
    )
    if name != "auto":
        profile = encoder_profile(name)
        if profile.codec != codec:
            raise EncoderUnavailable(
                f"encoder {name} produces {rift_pb2.Codec.Name(profile.codec)}, "
                f"not {rift_pb2.Codec.Name(codec)}"
            )
        return PyAVEncoder(profile, config, clock=clock)
    reasons = []
    for profile in encoder_profiles():
        if profile.codec != codec:
            continue
        try:
            return PyAVEncoder(profile, config, clock=clock)
        except EncoderUnavailable as exc:
            log.debug("encoder %s skipped: %s", profile.name, exc)
            reasons.append(profile.name)
    raise EncoderUnavailable(
        f"no {rift_pb2.Codec.Name(codec)} encoder opens here (tried {', '.join(reasons)})"
    )
