"""Decoder: frame N out for packet N, keyframe gating, corrupt input, colour conversion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.media.conftest import make_frames, solid_frame
from wavry.media.capture.barcode import decode_barcode
from wavry.media.decoder import DecoderUnavailable, VideoDecoder, contains_keyframe
from wavry.media.encoder import create_encoder
from wavry.media.frames import EncodedFrame, RawFrame
from wavry.rift.proto import rift_pb2

H264 = rift_pb2.H264


def _stream(frames: list[RawFrame], keyframes: tuple[int, ...] = ()) -> list[EncodedFrame]:
    first = frames[0]
    with create_encoder(
        H264, width=first.width, height=first.height, fps=30, bitrate_kbps=1500
    ) as encoder:
        out = []
        for i, frame in enumerate(frames):
            encoded = encoder.encode(frame, force_keyframe=i in keyframes)
            assert encoded is not None
            out.append(encoded)
        return out


@pytest.fixture(scope="module")
def stream() -> list[EncodedFrame]:
    """30 frames of 320x240 game content with keyframes at 0, 10 and 20."""
    return _stream(make_frames(30), keyframes=(10, 20))


def test_frame_n_comes_out_for_packet_n(stream: list[EncodedFrame]) -> None:
    decoder = VideoDecoder(H264)
    for packet in stream:
        picture = decoder.decode(packet.data)
        assert picture is not None, "no decoder delay: every packet yields its own picture"
        # The barcode proves it is *this* packet's picture, not an earlier one.
        code = decode_barcode(picture.y)
        assert code is not None and code.frame_index == packet.frame_index
        assert picture.keyframe == packet.keyframe
        assert picture.decode_start <= picture.decode_end
    assert decoder.stats.frames == len(stream)
    assert decoder.stats.errors == 0
    assert not decoder.needs_keyframe


def test_joining_mid_stream_waits_for_a_keyframe(stream: list[EncodedFrame]) -> None:
    decoder = VideoDecoder(H264)
    assert decoder.needs_keyframe
    results = [decoder.decode(p.data) for p in stream[5:15]]
    assert all(r is None for r in results[:5])  # packets 5..9 are not keyframes
    assert decoder.stats.skipped_waiting_keyframe == 5
    assert decoder.stats.errors == 0  # skipped, not fed to FFmpeg
    assert all(r is not None for r in results[5:])  # from the keyframe at 10 on
    assert not decoder.needs_keyframe


def test_require_keyframe_freezes_until_the_next_one(stream: list[EncodedFrame]) -> None:
    decoder = VideoDecoder(H264)
    for packet in stream[:12]:
        decoder.decode(packet.data)
    decoder.require_keyframe()  # e.g. the transport lost frame 12
    assert decoder.needs_keyframe
    shown = [decoder.decode(p.data) is not None for p in stream[13:25]]
    assert shown == [False] * 7 + [True] * 5  # resumes at the keyframe (packet 20)


def test_corrupt_input_never_raises_and_recovers(stream: list[EncodedFrame]) -> None:
    decoder = VideoDecoder(H264)
    decoder.decode(stream[0].data)
    rng = np.random.default_rng(3)
    bad = [
        b"",
        b"\x00\x00\x00\x01",
        b"\x00\x00\x00\x01\x65" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
        stream[1].data[: len(stream[1].data) // 3],
        bytes(rng.integers(0, 256, 2000, dtype=np.uint8)),
    ]
    for data in bad:
        assert decoder.decode(data) is None
    assert decoder.stats.errors >= 2
    assert decoder.stats.last_error
    assert decoder.needs_keyframe
    assert decoder.decode(stream[10].data) is not None
    assert not decoder.needs_keyframe


@settings(max_examples=60)
@given(data=st.binary(max_size=3000), prefix=st.sampled_from([b"", b"\x00\x00\x01\x65"]))
def test_fuzzed_input_never_raises(data: bytes, prefix: bytes) -> None:
    decoder = VideoDecoder(H264)
    decoder.decode(prefix + data)
    decoder.decode(data)


def test_contains_keyframe_for_each_codec(stream: list[EncodedFrame]) -> None:
    assert [contains_keyframe(H264, p.data) for p in stream] == [p.keyframe for p in stream]
    assert not contains_keyframe(H264, b"")
    assert not contains_keyframe(rift_pb2.AV1, b"\x32\x00")  # an OBU_FRAME without a header
    assert contains_keyframe(rift_pb2.AV1, b"\x12\x00\x0a\x01\x00")  # TD, then a seq header


def test_planes_are_views_with_pitches_and_rgb_uses_bt709() -> None:
    # BT.709 limited range: pure red is Y=63, U=102, V=240.
    frame = solid_frame((63, 102, 240))
    (packet,) = _stream([frame])
    picture = VideoDecoder(H264).decode(packet.data)
    assert picture is not None
    assert picture.y.shape == (240, 320)
    assert picture.u.shape == picture.v.shape == (120, 160)
    y_pitch, u_pitch, v_pitch = picture.pitches
    assert y_pitch >= 320 and u_pitch >= 160 and v_pitch >= 160
    assert picture.y.base is not None  # a view, not a copy
    rgb = picture.to_rgb()
    assert rgb.shape == (240, 320, 3)
    assert np.all(np.abs(rgb[100, 100].astype(int) - [255, 0, 0]) <= 6)


def test_unknown_codec_is_unavailable() -> None:
    with pytest.raises(DecoderUnavailable):
        VideoDecoder(7)  # type: ignore[arg-type]


def test_decoder_closes_into_waiting_state(stream: list[EncodedFrame]) -> None:
    with VideoDecoder(H264) as decoder:
        decoder.decode(stream[0].data)
    assert decoder.needs_keyframe
    assert decoder.decode(stream[1].data) is None
    assert decoder.codec == H264
