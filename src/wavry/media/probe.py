"""Which encoders work here, and how fast: probe, don't assume.

:func:`probe_encoders` tries every registered encoder, hardware first. One that fails to open
(no GPU, no driver, not built into FFmpeg) is skipped. One that opens encodes ~30 frames of
the hard "game" test content at the requested size, and is *real time* when its p90 encode
time is under 70% of the frame interval (the rest of the frame time belongs to capture,
packetising and the other thread). On the project's 2-core machine libx264 passes at 1080p60,
x265 does not, and SVT-AV1 is borderline — which is exactly why this is measured.

:func:`choose_encoder` then picks from what the client decodes: hardware first (AV1 > HEVC >
H.264: the same picture in fewer bits, at no CPU cost), then software H.264 before HEVC/AV1
(x264 ultrafast keeps frame sizes smooth and leaves CPU for the application being streamed;
software AV1's frame sizes are bursty, which costs latency). A client that lists no codecs is
assumed to decode H.264, which every client does.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wavry.media.capture.testsrc import TestSource
from wavry.media.encoder import (
    EncoderConfig,
    EncoderError,
    EncoderUnavailable,
    PyAVEncoder,
    encoder_profile,
    encoder_profiles,
)
from wavry.media.frames import RawFrame
from wavry.rift.proto import rift_pb2

__all__ = [
    "PREFER_HARDWARE",
    "PREFER_SOFTWARE",
    "REALTIME_SHARE",
    "EncoderInfo",
    "choose_encoder",
    "codec_from_name",
    "offered_codecs",
    "probe_encoders",
]

log = logging.getLogger(__name__)

#: An encoder is real time when its p90 frame time is below this share of the frame interval.
REALTIME_SHARE = 0.7
PREFER_HARDWARE: tuple[rift_pb2.Codec, ...] = (rift_pb2.AV1, rift_pb2.HEVC, rift_pb2.H264)
PREFER_SOFTWARE: tuple[rift_pb2.Codec, ...] = (rift_pb2.H264, rift_pb2.HEVC, rift_pb2.AV1)
_WARMUP = 3
_DISTINCT_FRAMES = 8


@dataclass(frozen=True, slots=True)
class EncoderInfo:
    """One encoder that opened here, with its measured speed at the probed size."""

    name: str
    codec: rift_pb2.Codec
    hardware: bool
    realtime: bool
    mean_ms: float
    p90_ms: float


def _test_frames(width: int, height: int, fps: int) -> list[RawFrame]:
    barcode = width >= 256 and height >= 96
    with TestSource(pattern="game", barcode=barcode) as src:
        src.open(width=width, height=height, fps=fps)
        return [src.grab() for _ in range(_DISTINCT_FRAMES)]


def _measure(
    name: str, config: EncoderConfig, frames: Sequence[RawFrame], count: int
) -> list[float] | None:
    """Per-frame encode times in ms, or None if the encoder does not open or fails."""
    budget_ms = REALTIME_SHARE * 1000.0 / config.fps
    try:
        encoder = PyAVEncoder(encoder_profile(name), config)
    except EncoderUnavailable as exc:
        log.debug("encoder %s unavailable: %s", name, exc)
        return None
    times: list[float] = []
    try:
        for i in range(count + _WARMUP):
            frame = frames[i % len(frames)]
            start = time.perf_counter()
            encoder.encode(frame)
            elapsed = (time.perf_counter() - start) * 1000.0
            if i >= _WARMUP:
                times.append(elapsed)
            # Hopelessly slow encoders (x265 at 1080p here) need not finish the run.
            if len(times) >= 5 and sum(times) / len(times) > 2 * budget_ms:
                break
    except EncoderError as exc:
        log.info("encoder %s opened but failed to encode: %s", name, exc)
        return None
    finally:
        encoder.close()
    return times


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def probe_encoders(
    width: int,
    height: int,
    fps: int,
    *,
    names: Iterable[str] | None = None,
    frames: int = 30,
    bitrate_kbps: int | None = None,
) -> list[EncoderInfo]:
    """Encoders that open here (hardware first), each timed on ``frames`` test frames.

    ``names`` limits the probe to some encoders; ``bitrate_kbps`` defaults to 0.1 bit per
    pixel per frame (12 Mbit/s at 1080p60), a typical streaming rate.
    """
    if names is None:
        profiles = encoder_profiles()
    else:
        profiles = sorted((encoder_profile(n) for n in names), key=lambda p: not p.hardware)
    if bitrate_kbps is None:
        bitrate_kbps = max(500, min(100_000, int(width * height * fps * 0.1 / 1000)))
    config = EncoderConfig(width=width, height=height, fps=fps, bitrate_kbps=bitrate_kbps)
    test_frames = _test_frames(width, height, fps)
    budget_ms = REALTIME_SHARE * 1000.0 / fps
    found: list[EncoderInfo] = []
    for profile in profiles:
        times = _measure(profile.name, config, test_frames, frames)
        if not times:
            continue
        info = EncoderInfo(
            name=profile.name,
            codec=profile.codec,
            hardware=profile.hardware,
            realtime=len(times) >= frames and _p90(times) <= budget_ms,
            mean_ms=sum(times) / len(times),
            p90_ms=_p90(times),
        )
        log.info(
            "encoder %s: %s at %dx%d@%d (mean %.2f ms, p90 %.2f ms, budget %.2f ms)",
            info.name,
            "real time" if info.realtime else "too slow",
            width,
            height,
            fps,
            info.mean_ms,
            info.p90_ms,
            budget_ms,
        )
        found.append(info)
    return found


def choose_encoder(
    client_codecs: Iterable[rift_pb2.Codec],
    probe: Sequence[EncoderInfo],
    *,
    prefer_hardware: Sequence[rift_pb2.Codec] = PREFER_HARDWARE,
    prefer_software: Sequence[rift_pb2.Codec] = PREFER_SOFTWARE,
) -> EncoderInfo:
    """The best real-time encoder whose codec the client decodes.

    Falls back to a non-real-time H.264 encoder (with a warning) rather than refusing the
    session; raises :class:`EncoderUnavailable` when no codec is shared.
    """
    wanted = set(client_codecs) or {rift_pb2.H264}

    def rank(info: EncoderInfo) -> tuple[int, int]:
        order = prefer_hardware if info.hardware else prefer_software
        position = order.index(info.codec) if info.codec in order else len(order)
        return (0 if info.hardware else 1, position)

    usable = sorted((i for i in probe if i.realtime and i.codec in wanted), key=rank)
    if usable:
        return usable[0]
    fallback = [i for i in probe if i.codec == rift_pb2.H264 and rift_pb2.H264 in wanted]
    if fallback:
        chosen = min(fallback, key=lambda i: i.mean_ms)
        log.warning(
            "no real-time encoder for the client's codecs; using %s (%.1f ms per frame)",
            chosen.name,
            chosen.mean_ms,
        )
        return chosen
    names = ", ".join(rift_pb2.Codec.Name(c) for c in sorted(wanted))
    raise EncoderUnavailable(f"no encoder here produces a codec the client decodes ({names})")


_CODEC_NAMES: dict[str, rift_pb2.Codec] = {
    "h264": rift_pb2.H264,
    "avc": rift_pb2.H264,
    "hevc": rift_pb2.HEVC,
    "h265": rift_pb2.HEVC,
    "av1": rift_pb2.AV1,
}


def codec_from_name(name: str) -> rift_pb2.Codec:
    """``"h264"``/``"avc"``, ``"hevc"``/``"h265"`` or ``"av1"`` (any case) as a wire codec."""
    try:
        return _CODEC_NAMES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; choose from h264, hevc, av1") from None


@functools.lru_cache(maxsize=16)
def _probe_cached(
    names: tuple[str, ...], width: int, height: int, fps: int
) -> tuple[EncoderInfo, ...]:
    return tuple(probe_encoders(width, height, fps, names=names))


def offered_codecs(
    preference: Iterable[str], *, width: int, height: int, fps: int
) -> list[rift_pb2.Codec]:
    """The codecs a host can offer, in the configured preference order.

    A codec is offered when one of its encoders is real time at this size and rate (probed
    once per process and size, then cached). H.264 is offered whenever it is listed, even if
    too slow: a degraded stream beats no stream.
    """
    wanted: list[rift_pb2.Codec] = []
    for name in preference:
        codec = codec_from_name(name)
        if codec not in wanted:
            wanted.append(codec)
    names = tuple(p.name for p in encoder_profiles() if p.codec in wanted)
    probe = _probe_cached(names, width, height, fps)
    realtime = {i.codec for i in probe if i.realtime}
    opened = {i.codec for i in probe}
    offered = [c for c in wanted if c in realtime or (c == rift_pb2.H264 and c in opened)]
    if not offered:
        raise EncoderUnavailable(
            "none of the configured codecs ("
            + ", ".join(preference)
            + f") has a working encoder at {width}x{height}@{fps}"
        )
    return offered
