"""Encoder probing and selection."""

from __future__ import annotations

import pytest

from wavry.media.encoder import EncoderUnavailable
from wavry.media.probe import (
    EncoderInfo,
    choose_encoder,
    codec_from_name,
    offered_codecs,
    probe_encoders,
)
from wavry.rift.proto import rift_pb2

H264, HEVC, AV1 = rift_pb2.H264, rift_pb2.HEVC, rift_pb2.AV1


def _info(name: str, codec: rift_pb2.Codec, hardware: bool, realtime: bool = True) -> EncoderInfo:
    return EncoderInfo(name, codec, hardware, realtime, mean_ms=1.0, p90_ms=1.5)


def test_probe_finds_libx264_real_time_and_survives_missing_hardware() -> None:
    found = probe_encoders(320, 240, 30, frames=10)
    by_name = {i.name: i for i in found}
    x264 = by_name["libx264"]
    assert x264.realtime and not x264.hardware and x264.codec == H264
    assert x264.mean_ms > 0 and x264.p90_ms > 0
    hardware = [i.hardware for i in found]
    assert hardware == sorted(hardware, reverse=True)  # hardware entries first
    for info in found:  # whatever opened has a measured time
        assert info.mean_ms > 0


def test_probe_limited_to_names() -> None:
    found = probe_encoders(320, 240, 30, names=["libx264", "h264_nvenc"], frames=5)
    assert "libx264" in [i.name for i in found]
    assert {i.name for i in found} <= {"libx264", "h264_nvenc"}


def test_choose_prefers_hardware_then_codec_order() -> None:
    probe = [
        _info("libx264", H264, False),
        _info("libx265", HEVC, False),
        _info("libsvtav1", AV1, False),
        _info("hevc_nvenc", HEVC, True),
        _info("h264_nvenc", H264, True),
    ]
    assert choose_encoder([H264, HEVC, AV1], probe).name == "hevc_nvenc"
    assert choose_encoder([H264], probe).name == "h264_nvenc"
    software = [i for i in probe if not i.hardware]
    assert choose_encoder([HEVC, AV1, H264], software).name == "libx264"
    assert choose_encoder([AV1, HEVC], software).name == "libx265"
    assert choose_encoder([], software).name == "libx264"  # no list: everyone decodes H.264


def test_choose_skips_slow_encoders_and_falls_back_to_h264() -> None:
    probe = [_info("libx265", HEVC, False, realtime=False), _info("libx264", H264, False, False)]
    assert choose_encoder([HEVC, H264], probe).name == "libx264"
    with pytest.raises(EncoderUnavailable, match="HEVC"):
        choose_encoder([HEVC], probe)


def test_codec_names() -> None:
    assert codec_from_name(" H264 ") == H264
    assert codec_from_name("h265") == HEVC
    assert codec_from_name("av1") == AV1
    with pytest.raises(ValueError, match="unknown codec"):
        codec_from_name("vp9")


def test_offered_codecs_keeps_order_and_always_offers_listed_h264() -> None:
    assert offered_codecs(["h264"], width=320, height=240, fps=30) == [H264]
    offered = offered_codecs(["hevc", "h264", "h264"], width=320, height=240, fps=30)
    assert offered[-1] == H264 and len(offered) == len(set(offered))
    assert set(offered) <= {HEVC, H264}
