"""Helpers shared by the media tests."""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np
import pytest

from wavry.media.capture.testsrc import TestSource
from wavry.media.frames import RawFrame


def make_frames(
    count: int, *, width: int = 320, height: int = 240, pattern: str = "game", fps: int = 30
) -> list[RawFrame]:
    with TestSource(pattern=pattern) as src:
        src.open(width=width, height=height, fps=fps)
        return [src.grab() for _ in range(count)]


def solid_frame(
    yuv: tuple[int, int, int], *, width: int = 320, height: int = 240, index: int = 0
) -> RawFrame:
    buf = np.empty((height * 3 // 2, width), np.uint8)
    buf[:height] = yuv[0]
    buf[height : height + height // 4] = yuv[1]
    buf[height + height // 4 :] = yuv[2]
    image = av.VideoFrame.from_numpy_buffer(buf, format="yuv420p")
    return RawFrame(image=image, frame_index=index, capture_time=index / 30, capture_duration=0.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    yield FakeClock()
