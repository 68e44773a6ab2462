"""The synthetic capture source: sizes, content character, barcode, buffer ownership."""

from __future__ import annotations

import numpy as np
import pytest

from wavry.media.capture.barcode import BARCODE_HEIGHT, BarcodeValue, decode_barcode, timestamp_us
from wavry.media.capture.base import CaptureUnavailable, open_capture
from wavry.media.capture.testsrc import TestSource


def _luma(src: TestSource) -> np.ndarray:
    return src.grab().luma().astype(np.int16)


def test_frames_are_yuv420p_at_the_requested_size() -> None:
    with open_capture("testsrc", width=640, height=360, fps=30) as cap:
        assert (cap.width, cap.height) == (640, 360)
        frame = cap.grab()
        assert frame.pixel_format == "yuv420p"
        assert (frame.width, frame.height) == (640, 360)
        assert frame.luma().shape == (360, 640)
        assert not frame.unchanged


def test_default_size_is_the_virtual_monitor_and_one_side_keeps_the_aspect() -> None:
    src = TestSource(native_width=1280, native_height=720)
    src.open(width=None, height=None, fps=30)
    assert (src.width, src.height) == (1280, 720)
    src.open(width=None, height=360, fps=30)
    assert (src.width, src.height) == (640, 360)
    assert src.monitors()[0].width == 1280
    src.close()


def test_frame_index_and_timestamp_are_in_the_barcode() -> None:
    with open_capture("testsrc", width=320, height=240, fps=60, pattern="game") as cap:
        last_time = 0.0
        for expected in range(5):
            frame = cap.grab()
            assert frame.frame_index == expected
            assert frame.capture_time >= last_time
            last_time = frame.capture_time
            assert frame.capture_duration >= 0
            assert decode_barcode(frame.luma()) == BarcodeValue(
                frame_index=expected, timestamp_us=timestamp_us(frame.capture_time)
            )


def test_desktop_is_low_motion_and_game_is_full_motion() -> None:
    def motion(pattern: str) -> float:
        """Share of luma pixels that change between two consecutive frames."""
        with TestSource(pattern=pattern) as src:
            src.open(width=640, height=360, fps=30)
            a, b = _luma(src), _luma(src)
        below = slice(BARCODE_HEIGHT, None)  # the barcode changes every frame by design
        return float(np.mean(a[below] != b[below]))

    assert motion("desktop") < 0.3  # only the text in the scrolling window moves
    assert motion("game") > 0.9  # everything moves


def test_earlier_frames_are_never_overwritten() -> None:
    with open_capture("testsrc", width=320, height=240, fps=30, pattern="game") as cap:
        first = cap.grab()
        snapshot = first.luma().copy()
        for _ in range(3):
            cap.grab()
        assert np.array_equal(first.luma(), snapshot)


def test_content_is_deterministic_for_a_seed() -> None:
    def frame(seed: int) -> np.ndarray:
        with TestSource(pattern="game", seed=seed) as src:
            src.open(width=320, height=240, fps=30)
            for _ in range(3):
                src.grab()
            return src.grab().luma()[BARCODE_HEIGHT:].copy()

    assert np.array_equal(frame(1), frame(1))
    assert not np.array_equal(frame(1), frame(2))


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="pattern"):
        TestSource(pattern="cats")
    src = TestSource()
    with pytest.raises(CaptureUnavailable, match="one monitor"):
        src.open(width=320, height=240, fps=30, monitor=1)
    with pytest.raises(CaptureUnavailable, match="barcode"):
        src.open(width=200, height=120, fps=30)
    src_no_code = TestSource(barcode=False)
    src_no_code.open(width=64, height=48, fps=30)
    assert src_no_code.grab().luma().shape == (48, 64)
    with pytest.raises(RuntimeError, match="not open"):
        TestSource().grab()
