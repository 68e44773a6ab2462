"""Frame types passed between capture, encode, decode and presentation.

Pixels stay in PyAV/FFmpeg buffers end to end so nothing is copied between stages:

* :class:`RawFrame` (capture -> encoder) holds an ``av.VideoFrame``. Capture backends build it
  zero-copy (``VideoFrame.from_numpy_buffer`` over a numpy array, or the output of a swscale
  conversion) and the encoder hands it to FFmpeg as it is. Backends produce ``yuv420p`` (what
  every software encoder wants, so the encoder never converts); an encoder converts anything
  else with swscale.
* :class:`EncodedFrame` (encoder -> network) is one access unit in Annex B (H.264/HEVC) or a
  temporal unit (AV1), with the per-frame telemetry timestamps.
* :class:`DecodedFrame` (decoder -> window) exposes the three ``yuv420p`` planes as numpy views
  with their row pitch, ready for ``SDL_UpdateYUVTexture``.

Ownership rule: a capture backend never writes into the pixels of a :class:`RawFrame` it has
returned (each grab fills a new buffer), so a frame can sit in a queue between the capture and
the encode threads for as long as needed. All times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import av
import numpy as np
import numpy.typing as npt

__all__ = [
    "COLORSPACE",
    "DecodedFrame",
    "EncodedFrame",
    "RawFrame",
    "plane_view",
]

#: Colour convention of every picture we produce: BT.709 matrix, limited ("TV") range. The
#: capture conversion, the encoder's VUI and the presenter (``SDL_YUV_CONVERSION_BT709``)
#: must agree, or colours shift slightly.
COLORSPACE = "bt709"

U8Array = npt.NDArray[np.uint8]


def plane_view(frame: av.VideoFrame, index: int) -> U8Array:
    """A zero-copy 2-D uint8 view of one plane of ``frame``, cropped to the visible size.

    The view keeps the plane (and so the frame) alive. Its ``strides[0]`` is the row pitch in
    bytes, which may exceed the width because FFmpeg pads rows for SIMD.
    """
    plane = frame.planes[index]
    # VideoPlane implements the buffer protocol; its stub does not say so.
    rows: U8Array = np.frombuffer(cast(memoryview, plane), dtype=np.uint8)
    pitch = plane.line_size
    height = plane.height
    # A plane buffer can be shorter than pitch*height when the last row is not padded.
    if rows.size < pitch * height:
        rows = np.pad(rows, (0, pitch * height - rows.size))
    return rows[: pitch * height].reshape(height, pitch)[:, : plane.width]


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One captured picture, ready for an encoder.

    ``image`` is normally ``yuv420p`` at the negotiated stream size. ``unchanged`` is True when
    the backend knows the screen did not change since its previous frame (the image is then
    that previous image): the host may skip encoding it.
    """

    image: av.VideoFrame
    frame_index: int
    capture_time: float
    capture_duration: float
    unchanged: bool = False

    def __post_init__(self) -> None:
        if self.frame_index < 0:
            raise ValueError("frame_index must be >= 0")
        if self.capture_duration < 0:
            raise ValueError("capture_duration must be >= 0")

    @property
    def width(self) -> int:
        return int(self.image.width)

    @property
    def height(self) -> int:
        return int(self.image.height)

    @property
    def pixel_format(self) -> str:
        return str(self.image.format.name)

    def luma(self) -> U8Array:
        """Zero-copy view of the Y plane (``yuv420p`` frames only)."""
        if self.pixel_format != "yuv420p":
            raise ValueError(f"luma() needs a yuv420p frame, not {self.pixel_format}")
        return plane_view(self.image, 0)


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded access unit plus the telemetry of how it was made."""

    data: bytes
    keyframe: bool
    frame_index: int
    capture_time: float
    encode_start: float
    encode_end: float

    @property
    def encode_duration(self) -> float:
        return self.encode_end - self.encode_start


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """A decoded picture in ``yuv420p`` (BT.709, limited range).

    ``y``, ``u`` and ``v`` are zero-copy views into the decoder's frame: pass
    ``plane.ctypes.data`` and ``plane.strides[0]`` (the pitch) to ``SDL_UpdateYUVTexture``.
    They stay valid for as long as this object (or the views) are referenced.
    """

    y: U8Array
    u: U8Array
    v: U8Array
    width: int
    height: int
    decode_start: float
    decode_end: float
    keyframe: bool
    _image: av.VideoFrame = field(repr=False)

    @classmethod
    def from_av(
        cls, image: av.VideoFrame, *, decode_start: float, decode_end: float
    ) -> DecodedFrame:
        """Wrap a decoder output, converting to yuv420p first if the codec produced another
        layout (e.g. yuvj420p or 4:4:4 from a foreign encoder)."""
        keyframe = bool(image.key_frame)
        if image.format.name != "yuv420p":
            image = image.reformat(format="yuv420p")
        return cls(
            y=plane_view(image, 0),
            u=plane_view(image, 1),
            v=plane_view(image, 2),
            width=int(image.width),
            height=int(image.height),
            decode_start=decode_start,
            decode_end=decode_end,
            keyframe=keyframe,
            _image=image,
        )

    @property
    def pitches(self) -> tuple[int, int, int]:
        """Row pitch in bytes of Y, U and V."""
        return (int(self.y.strides[0]), int(self.u.strides[0]), int(self.v.strides[0]))

    def to_rgb(self) -> U8Array:
        """An (height, width, 3) RGB copy, converted with the BT.709 limited-range matrix."""
        rgb = self._image.reformat(format="rgb24", src_colorspace="ITU709", src_color_range="MPEG")
        return np.asarray(rgb.to_ndarray(), dtype=np.uint8)
