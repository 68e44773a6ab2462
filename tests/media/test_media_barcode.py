"""The in-picture barcode: exact round trip, rejection of non-barcodes, survival through H.264."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.media.capture.barcode import (
    BARCODE_HEIGHT,
    BARCODE_WIDTH,
    BarcodeValue,
    decode_barcode,
    stamp_barcode,
    timestamp_us,
)
from wavry.media.capture.testsrc import TestSource
from wavry.media.decoder import VideoDecoder
from wavry.media.encoder import create_encoder
from wavry.rift.proto import rift_pb2


@given(
    frame_index=st.integers(0, 2**32 - 1),
    ts=st.integers(0, 2**48 - 1),
    background=st.integers(0, 255),
)
def test_round_trip_is_exact(frame_index: int, ts: int, background: int) -> None:
    plane = np.full((120, 300), background, np.uint8)
    value = BarcodeValue(frame_index=frame_index, timestamp_us=ts)
    stamp_barcode(plane, value)
    assert decode_barcode(plane) == value
    # Only the strip is touched.
    assert np.all(plane[BARCODE_HEIGHT:, :] == background)
    assert np.all(plane[:, BARCODE_WIDTH:] == background)


def test_reads_from_a_strided_view() -> None:
    padded = np.zeros((200, 512), np.uint8)
    view = padded[:, :400]
    stamp_barcode(view, BarcodeValue(7, 123456789))
    assert decode_barcode(view) == BarcodeValue(7, 123456789)


@pytest.mark.parametrize(
    "plane",
    [
        np.full((96, 256), 128, np.uint8),
        np.zeros((96, 256), np.uint8),
        np.random.default_rng(1).integers(0, 256, (96, 256), dtype=np.uint8),
        np.zeros((95, 256), np.uint8),
        np.zeros((96, 255), np.uint8),
    ],
    ids=["grey", "black", "noise", "too-short", "too-narrow"],
)
def test_non_barcodes_read_as_none(plane: np.ndarray) -> None:
    assert decode_barcode(plane) is None


def test_a_flipped_bit_fails_the_checksum() -> None:
    plane = np.zeros((96, 256), np.uint8)
    stamp_barcode(plane, BarcodeValue(1, 2))
    block = plane[16:32, 32:48]
    block[:] = 251 - block  # 16 <-> 235: one bit flipped cleanly
    assert decode_barcode(plane) is None


def test_an_ambiguous_block_is_rejected() -> None:
    plane = np.zeros((96, 256), np.uint8)
    stamp_barcode(plane, BarcodeValue(1, 2))
    plane[0:16, 0:16] = 128
    assert decode_barcode(plane) is None


def test_stamp_refuses_a_small_picture() -> None:
    with pytest.raises(ValueError, match="smaller than"):
        stamp_barcode(np.zeros((90, 400), np.uint8), BarcodeValue(0, 0))


@pytest.mark.parametrize(("index", "ts"), [(-1, 0), (2**32, 0), (0, -1), (0, 2**48)])
def test_value_ranges_are_checked(index: int, ts: int) -> None:
    with pytest.raises(ValueError):
        BarcodeValue(frame_index=index, timestamp_us=ts)


def test_timestamp_is_monotonic_microseconds_in_48_bits() -> None:
    assert timestamp_us(1.5) == 1_500_000
    assert timestamp_us(2**48 / 1e6 + 1.0) == 1_000_000


@given(st.integers(0, 2**48 - 1))
def test_timestamp_survives_a_trip_through_float_seconds(n: int) -> None:
    assert timestamp_us(n / 1e6) == n


@pytest.mark.parametrize("pattern", ["game", "desktop"])
def test_survives_h264_at_2_mbps_720p(pattern: str) -> None:
    """Every frame's exact index and timestamp come back after libx264 at 2 Mbit/s."""
    with TestSource(pattern=pattern) as src:
        src.open(width=1280, height=720, fps=30)
        encoder = create_encoder(rift_pb2.H264, width=1280, height=720, fps=30, bitrate_kbps=2000)
        decoder = VideoDecoder(rift_pb2.H264)
        for _ in range(40):
            raw = src.grab()
            encoded = encoder.encode(raw)
            assert encoded is not None
            picture = decoder.decode(encoded.data)
            assert picture is not None
            assert decode_barcode(picture.y) == BarcodeValue(
                frame_index=raw.frame_index, timestamp_us=timestamp_us(raw.capture_time)
            )
        encoder.close()


def test_check_picture_tells_right_blurred_damaged_and_wrong_pictures() -> None:
    from wavry.media.capture.barcode import BarcodeValue, check_picture, stamp_barcode, timestamp_us

    t = 1234.5678
    y = np.full((240, 320), 100, dtype=np.uint8)
    stamp_barcode(y, BarcodeValue(frame_index=7, timestamp_us=timestamp_us(t)))
    assert check_picture(y, t) == "verified"
    assert check_picture(y, t + 0.001) == "damaged"  # another frame's picture
    grey = np.full((240, 320), 128, dtype=np.uint8)  # a keyframe squeezed to nothing
    assert check_picture(grey, t) == "blurred"
    crisp = y.copy()
    crisp[:16, :16] = 235 - crisp[:16, :16] + 16  # one block flipped: CRC fails, blocks crisp
    assert check_picture(crisp, t) == "damaged"
    assert check_picture(np.zeros((50, 50), dtype=np.uint8), t) == "absent"
